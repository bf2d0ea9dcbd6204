/*
 * berth's minimal init for `--init` (Docker's docker-init / tini role):
 * runs as PID 1 in the container, starts the command as its child, forwards
 * the signals a user sends to the container to that child, reaps every
 * zombie reparented to it, and exits with the child's status (128+signal
 * when the child was killed), as tini does.
 *
 * Built static (it runs inside images without a libc, e.g. busybox).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) {
        first = 2;
    }
    if (argc <= first) {
        fprintf(stderr, "docker-init: usage: docker-init [--] command [args...]\n");
        return 1;
    }
    sigset_t all, old;
    sigfillset(&all);
    /* Block everything; signals are taken synchronously with sigtimedwait. */
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t child = fork();
    if (child < 0) {
        perror("docker-init: fork");
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* Its own process group, so a terminal's signals reach it as usual. */
        setpgid(0, 0);
        if (isatty(STDIN_FILENO)) {
            tcsetpgrp(STDIN_FILENO, getpid());
        }
        execvp(argv[first], &argv[first]);
        fprintf(stderr, "docker-init: exec %s: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    setpgid(child, child);
    int child_status = 0;
    int child_done = 0;
    struct timespec tick = {0, 100 * 1000 * 1000};
    for (;;) {
        siginfo_t info;
        int sig = sigtimedwait(&all, &info, &tick);
        if (sig > 0 && sig != SIGCHLD) {
            /* Forward to the child's group (it may have spawned helpers). */
            if (kill(-child, sig) != 0) {
                kill(child, sig);
            }
        }
        /* Reap everything that is waiting. */
        for (;;) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0) {
                break;
            }
            if (p == child) {
                child_done = 1;
                child_status = status;
            }
        }
        if (child_done) {
            break;
        }
    }
    if (WIFEXITED(child_status)) {
        return WEXITSTATUS(child_status);
    }
    if (WIFSIGNALED(child_status)) {
        return 128 + WTERMSIG(child_status);
    }
    return 1;
}
