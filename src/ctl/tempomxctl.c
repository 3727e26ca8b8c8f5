/*
 * tempomxctl.c: main of tempomxctl, the admin command of tempomx (and of
 * mailq, a link to it that lists the queue).
 *
 * Owns the global options (-f file), the configuration (read like
 * tempomxd reads it, so the spool, the pid file and the policy settings
 * are the daemon's), the table of commands with their synopses (help and
 * the usage lines, and the test that compares them with tempomxctl(8),
 * read it) and the dispatch to one function per command.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "ctl.h"
#include "log.h"

static int cmd_help(struct ctl *c, int argc, char **argv);

const struct ctl_command ctl_commands[] = {
    {"queue", "[--class hi|lo] [--queue NAME] [--from ADDR] [--to ADDR] [-j|--json]", cmd_queue,
     "list the queued mail like mailq"},
    {"show", "ID [--body]", cmd_show, "show a message's envelope and headers (or all of it)"},
    {"hold", "ID ...", cmd_hold, "put messages on hold"},
    {"release", "[--force] ID ...", cmd_release,
     "release held (or, with --force, quarantined) messages"},
    {"requeue", "ID ...", cmd_requeue, "send messages back to hi or lo for a new scan"},
    {"delete", "ID ... | ALL | --from ADDR | --to ADDR", cmd_delete, "delete messages"},
    {"flush", "[ID ...]", cmd_flush, "retry deferred mail now"},
    {"reload", "", cmd_reload, "make the daemon read its configuration again"},
    {"log-level", "[debug|info]", cmd_log_level, "show or change how much the daemon logs"},
    {"status", "", cmd_status, "the daemon, its children and listeners, the queues"},
    {"stats", "[--days N] [--svg FILE]", cmd_stats,
     "connections and mail per day by outcome, as text or as an SVG chart"},
    {"monitor", "[--interval SECONDS] [--count N]", cmd_monitor,
     "queue sizes and mail rates, one line per interval"},
    {"why", "ADDR | ID", cmd_why, "what the policy would decide for a client now, and why"},
    {"history show", "ADDR", cmd_history_show, "show the history of a client and its network"},
    {"history good", "ADDR | CIDR", cmd_history_good, "mark a host or network as a good sender"},
    {"history junk", "ADDR | CIDR", cmd_history_junk, "mark a host or network as a junk sender"},
    {"history forget", "ADDR | CIDR", cmd_history_forget,
     "remove the history of a host or network"},
    {"history list", "[--good|--junk|--new] [--limit N]", cmd_history_list,
     "list the history records"},
    {"whitelist add", "client CIDR | sender ADDR | recipient ADDR", cmd_whitelist_add,
     "add a whitelist entry to whitelist_file and apply it"},
    {"whitelist remove", "client CIDR | sender ADDR | recipient ADDR", cmd_whitelist_remove,
     "remove a whitelist entry from whitelist_file and apply it"},
    {"whitelist list", "", cmd_whitelist_list, "list the whitelist entries"},
    {"help", "", cmd_help, "list the commands"},
};

const size_t ctl_ncommands = sizeof(ctl_commands) / sizeof(ctl_commands[0]);

static const struct ctl_command *find_command(const char *name)
{
	for (size_t i = 0; i < ctl_ncommands; i++)
		if (strcmp(ctl_commands[i].name, name) == 0)
			return &ctl_commands[i];
	return NULL;
}

int ctl_usage(const char *name)
{
	const struct ctl_command *cmd = find_command(name);
	if (cmd == NULL)
		ctl_err("usage: tempomxctl [-f file] command [argument ...]");
	else
		ctl_err("usage: tempomxctl %s%s%s", cmd->name, cmd->args[0] ? " " : "", cmd->args);
	return CTL_USAGE;
}

int ctl_usage_why(const char *name, const char *fmt, ...)
{
	const struct ctl_command *cmd = find_command(name);
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "tempomxctl: %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd != NULL)
		fprintf(stderr, "; usage: tempomxctl %s%s%s", cmd->name, cmd->args[0] ? " " : "",
		        cmd->args);
	fputc('\n', stderr);
	return CTL_USAGE;
}

/* One line per command: its name, a tab, its arguments; then the
 * summaries for a reader. With --names only the first part. */
static int cmd_help(struct ctl *c, int argc, char **argv)
{
	(void)c;
	int names = argc == 2 && strcmp(argv[1], "--names") == 0;
	if (argc > 1 && !names)
		return ctl_usage("help");
	for (size_t i = 0; i < ctl_ncommands; i++) {
		const struct ctl_command *cmd = &ctl_commands[i];
		if (names)
			printf("%s\n", cmd->name);
		else
			printf("%-17s %-45s %s\n", cmd->name, cmd->args, cmd->summary);
	}
	return CTL_OK;
}

static int load_config(struct ctl *c, const char *file)
{
	char err[1024];
	if (file == NULL && access(DEFAULT_CONFIG_FILE, F_OK) == 0)
		file = DEFAULT_CONFIG_FILE;
	c->conf_path = file;
	if (file != NULL) {
		if (conf_load(file, &c->cf, err, sizeof(err)) < 0) {
			ctl_err("%s", err);
			return -1;
		}
	} else {
		conf_defaults(&c->cf);
	}
	if (conf_finish(&c->cf, err, sizeof(err)) < 0) {
		ctl_err("%s", err);
		return -1;
	}
	return 0;
}

/* "history" and "whitelist" take a sub-command: the command name is the
 * first two words then. Returns the number of words used, 0 if none. */
static const struct ctl_command *match_command(int argc, char **argv, int *words)
{
	char two[64];
	if (argc >= 2) {
		snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
		const struct ctl_command *cmd = find_command(two);
		if (cmd != NULL) {
			*words = 2;
			return cmd;
		}
	}
	*words = 1;
	return argc >= 1 ? find_command(argv[0]) : NULL;
}

int main(int argc, char **argv)
{
	static struct ctl c;
	const char *file = NULL;
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int i = 1;

	/* Global options come before the command; they are few enough to
	 * take by hand, so that the commands' own long options are never
	 * mistaken for them. */
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
			file = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "-f", 2) == 0 && argv[i][2] != '\0') {
			file = argv[i] + 2;
			i++;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			break;
		}
	}
	log_init("tempomxctl", 0, 0);

	const struct ctl_command *cmd;
	int words = 0;
	char **args;
	int nargs;
	static char queue_name[] = "queue";
	if (strcmp(prog, "mailq") == 0) {
		/* mailq [options]: the listing, argv[0] standing for the name. */
		cmd = find_command("queue");
		args = argv + i - 1;
		nargs = argc - i + 1;
		args[0] = queue_name;
	} else {
		if (i >= argc)
			return ctl_usage(NULL);
		cmd = match_command(argc - i, argv + i, &words);
		if (cmd == NULL) {
			if (strcmp(argv[i], "history") == 0 || strcmp(argv[i], "whitelist") == 0)
				ctl_err(
				    "%s: unknown or missing sub-command%s%s (see tempomxctl help)",
				    argv[i], i + 1 < argc ? " " : "",
				    i + 1 < argc ? argv[i + 1] : "");
			else
				ctl_err("%s: unknown command (see tempomxctl help)", argv[i]);
			return CTL_USAGE;
		}
		/* The command sees its name as argv[0], its arguments after. */
		args = argv + i + words - 1;
		nargs = argc - i - words + 1;
	}
	if (cmd->run == cmd_help)
		return cmd_help(&c, nargs, args);
	if (load_config(&c, file) < 0)
		return CTL_FAIL;
	/* The actions are logged where the daemon logs. */
	log_set_facility(c.cf.syslog_facility);
	int rc = cmd->run(&c, nargs, args);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write the output");
		rc = CTL_FAIL;
	}
	ctl_close(&c);
	conf_free(&c.cf);
	return rc;
}
