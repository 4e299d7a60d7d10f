/* shimmy list — not built yet. */
#include "cli.h"

int cli_cmd_list(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_built("list");
}
