/* shimmy inspect — not built yet. */
#include "cli.h"

int cli_cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_built("inspect");
}
