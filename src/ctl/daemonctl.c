/*
 * daemonctl.c: the tempomxctl commands that only ask the daemon to act
 * (src/ctl/daemon.c carries the request): reload, which reports whether
 * the new configuration was taken, and log-level, which changes how much
 * every process of the daemon logs, at once and until the next start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int cmd_reload(struct ctl *c, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return ctl_usage("reload");
	if (ctl_daemon_action(c, "reload", "reload") < 0)
		return CTL_FAIL;
	printf("reloaded: the daemon runs with the new configuration\n");
	return CTL_OK;
}

int cmd_log_level(struct ctl *c, int argc, char **argv)
{
	char *lines = NULL;
	if (argc > 2)
		return ctl_usage("log-level");
	if (argc == 2 && strcmp(argv[1], "debug") != 0 && strcmp(argv[1], "info") != 0)
		return ctl_usage_why("log-level", "%s: the level is debug or info", argv[1]);
	if (argc == 1) {
		int rc = ctl_daemon_request(c, "log-level", &lines, "log-level");
		if (rc == -2)
			ctl_err("log-level: tempomxd is not running (no control socket at %s)",
			        c->cf.control_socket);
		if (rc == 0)
			printf("%s\n", strncmp(lines, "level ", 6) == 0 ? lines + 6 : lines);
		free(lines);
		return rc == 0 ? CTL_OK : CTL_FAIL;
	}
	char req[32];
	snprintf(req, sizeof(req), "log-level %s", argv[1]);
	if (ctl_daemon_action(c, req, "log-level") < 0)
		return CTL_FAIL;
	printf("log level: %s\n", argv[1]);
	return CTL_OK;
}
