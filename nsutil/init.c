/*
 * pydock-init: the PID 1 of `pydock run --init` (Docker's docker-init, which is tini).
 *
 * Bind-mounted read-only at /sbin/docker-init and run as `docker-init -- CMD ARGS...`.
 * PID 1 of a pid namespace gets no default signal actions (pid_namespaces(7)) and
 * inherits every orphan of the namespace, so a plain program there ignores SIGTERM and
 * leaves zombies. This one forks CMD, then does two things until CMD exits: reaps
 * every child (waitpid(-1)), and passes each signal it receives on to CMD. It exits
 * with CMD's status (128+N when CMD was killed by signal N), as tini does.
 *
 * Linked statically (-static): it runs in any container's root, whatever libc that
 * root has, or none. Compiled at install time by setup.py with the C toolchain cffi
 * uses anyway; a Python init would need an interpreter inside the container and costs
 * ~15 ms of start-up, this one well under a millisecond.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int first = 1;
    if (first < argc && strcmp(argv[first], "--") == 0)
        first++;
    if (first >= argc) {
        fprintf(stderr, "docker-init: no command given\n");
        return 1;
    }

    /* Every signal is taken synchronously with sigwaitinfo() (SIGKILL and SIGSTOP cannot
     * be blocked: the kernel does not deliver them to PID 1 from inside its namespace). */
    sigset_t all, old;
    sigfillset(&all);
    if (sigprocmask(SIG_BLOCK, &all, &old) != 0) {
        perror("docker-init: sigprocmask");
        return 1;
    }

    pid_t child = fork();
    if (child < 0) {
        perror("docker-init: fork");
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], argv + first);
        int err = errno;
        fprintf(stderr, "docker-init: exec %s failed: %s\n", argv[first], strerror(err));
        _exit(err == ENOENT ? 127 : 126); /* the shell's codes, which Docker reports too */
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            perror("docker-init: sigwaitinfo");
            return 1;
        }
        if (sig != SIGCHLD) {
            kill(child, sig); /* CMD gone meanwhile: ESRCH, and its SIGCHLD is pending */
            continue;
        }
        int code = -1;
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0)
                break;
            if (pid == child)
                code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (code >= 0)
            return code;
    }
}
