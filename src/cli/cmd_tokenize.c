/* shimmy tokenize — not built yet. */
#include "cli.h"

int cli_cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_built("tokenize");
}
