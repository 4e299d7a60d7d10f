/* shimmy bench — not built yet. */
#include "cli.h"

int cli_cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_built("bench");
}
