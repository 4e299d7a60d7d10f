/* shimmy generate — not built yet. */
#include "cli.h"

int cli_cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_built("generate");
}
