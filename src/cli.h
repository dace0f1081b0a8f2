/* cli — the command-line tools of the comfygate binary besides `serve`: init (data directory,
 * database, example .env), add-workflow and list-workflows (the workflow store, offline), and
 * health (every configured backend, checked once). They run before and beside the gateway,
 * never inside a reactor, so blocking I/O is fine here. Each returns the process exit code. */
#ifndef COMFYGATE_CLI_H
#define COMFYGATE_CLI_H

#include "core/config.h"

int cli_init(const struct config *cfg, const char *env_file, int argc, char **argv);
int cli_add_workflow(const struct config *cfg, int argc, char **argv);
int cli_list_workflows(const struct config *cfg, int argc, char **argv);
int cli_health(const struct config *cfg, int argc, char **argv);
/* Usage of one command (NULL: all), to out. */
void cli_usage(FILE *out, const char *cmd);

#endif
