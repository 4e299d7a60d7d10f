/* shimmy perplexity — not built yet. */
#include "cli.h"

int cli_cmd_perplexity(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_built("perplexity");
}
