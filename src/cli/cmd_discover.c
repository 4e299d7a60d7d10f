/* shimmy discover — not built yet. */
#include "cli.h"

int cli_cmd_discover(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_built("discover");
}
