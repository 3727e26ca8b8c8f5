/*
 * harness_run.c: running external programs (swaks, curl, msmtp, python3,
 * tempomxctl) with input, captured output and a deadline. Part of
 * libharness.a (see harness.c).
 */
#include "harness.h"
#include "harness_int.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- external commands ---- */

int h_run(char *const argv[], const void *in, size_t inlen, int timeout_ms, char **out,
          size_t *outlen)
{
	long long deadline = h_now_ms() + timeout_ms;
	int inpipe[2], outpipe[2], st = 0, timed_out = 0;
	size_t cap = 65536, n = 0, sent = 0;
	char *buf = malloc(cap + 1);
	pid_t pid;

	cr_assert_not_null(buf);
	cr_assert_eq(pipe2(inpipe, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(outpipe, O_CLOEXEC), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		dup2(inpipe[0], 0);
		dup2(outpipe[1], 1);
		dup2(outpipe[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	h_track(pid);
	close(inpipe[0]);
	close(outpipe[1]);
	fcntl(inpipe[1], F_SETFL, O_NONBLOCK);
	if (!in || inlen == 0) {
		close(inpipe[1]);
		inpipe[1] = -1;
	}
	for (;;) {
		struct pollfd pfd[2] = {{.fd = outpipe[0], .events = POLLIN},
		                        {.fd = inpipe[1], .events = POLLOUT}};
		long long left = deadline - h_now_ms();
		int pr;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		pr = poll(pfd, inpipe[1] >= 0 ? 2 : 1, (int)left);
		if (pr == -1 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		if (inpipe[1] >= 0 && (pfd[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(inpipe[1], (const char *)in + sent, inlen - sent);

			if (w > 0)
				sent += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				sent = inlen;
			if (sent >= inlen) {
				close(inpipe[1]);
				inpipe[1] = -1;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r;

			if (n == cap) {
				cap *= 2;
				buf = realloc(buf, cap + 1);
				cr_assert_not_null(buf);
			}
			r = read(outpipe[0], buf + n, cap - n);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			n += (size_t)r;
		}
	}
	if (inpipe[1] >= 0)
		close(inpipe[1]);
	close(outpipe[0]);
	/* Output closed: the process is ending; still bound the wait. */
	while (!timed_out && waitpid(pid, &st, WNOHANG) == 0) {
		if (h_now_ms() >= deadline)
			timed_out = 1;
		else
			h_sleep_ms(10);
	}
	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	h_untrack(pid);
	buf[n] = '\0';
	if (out)
		*out = buf;
	else
		free(buf);
	if (outlen)
		*outlen = n;
	if (timed_out)
		return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

int h_netns_ipv6(const char *const *cidrs, size_t n)
{
	char *up[] = {"ip", "link", "set", "lo", "up", NULL};

	if (unshare(CLONE_NEWNET) != 0)
		return -1;
	if (h_run(up, NULL, 0, 10000, NULL, NULL) != 0) {
		errno = ENOSYS;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char *add[] = {"ip",  "-6", "addr",  "add", (char *)cidrs[i],
		               "dev", "lo", "nodad", NULL};

		if (h_run(add, NULL, 0, 10000, NULL, NULL) != 0) {
			errno = ENOSYS;
			return -1;
		}
	}
	return 0;
}
