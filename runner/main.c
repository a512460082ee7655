/*
 * main.c — the irp binary's entry point. The same executable is the
 * supervisor (every user-facing command) and, when started by the
 * supervisor as "irp __worker", the worker that owns the Lua state.
 */
#include "cli.h"
#include "worker.h"

#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "__worker") == 0)
        return wk_main();
    return cli_main(argc, argv);
}
