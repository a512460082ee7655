/*
 * main.c — the irp binary's entry point. The same executable is the
 * supervisor (every user-facing command) and, when started by the
 * supervisor as "irp __worker", the worker that owns the Lua state.
 */
#include "cli.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* A closed stdin, stdout or stderr (cron, a service manager, `<&-`) would
 * let the next file opened take fd 0, 1 or 2: the journal written to as if
 * it were the terminal, and libuv asserting on it. /dev/null stands in. */
static void keep_standard_fds_open(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (got >= 0 && got != fd) {
            dup2(got, fd);
            close(got);
        }
    }
}

int main(int argc, char **argv)
{
    keep_standard_fds_open();
    if (argc == 2 && strcmp(argv[1], "__worker") == 0)
        return wk_main();
    return cli_main(argc, argv);
}
