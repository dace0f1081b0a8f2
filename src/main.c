/* comfygate — command-line entry point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "core/config.h"
#include "gateway.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: comfygate [COMMAND] [options]   (COMMAND defaults to serve)\n\n");
    cli_usage(out, NULL);
    fprintf(out,
            "\nserve's flags override the settings:\n"
            "  --host ADDR        HOST\n"
            "  --port N           PORT (0: any free port)\n"
            "  --port-file PATH   PORT_FILE: write the bound port there\n"
            "  --threads N        THREADS (0: one reactor per online CPU)\n"
            "  --env-file PATH    read KEY=VALUE settings from PATH (default: ./.env)\n"
            "  --set NAME=VALUE   any setting by name\n"
            "  comfygate --version\n");
}

static const struct {
    const char *flag;
    const char *name;
} flag_map[] = {
    {"--host", "HOST"}, {"--port", "PORT"}, {"--port-file", "PORT_FILE"}, {"--threads", "THREADS"},
};

static int parse_flags(int argc, char **argv, int i, struct config *cfg)
{
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--env-file")) {
            i++; /* consumed before config_load */
            continue;
        }
        if (!strcmp(a, "--set") && i + 1 < argc) {
            char kv[2048];
            snprintf(kv, sizeof(kv), "%s", argv[++i]);
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "comfygate: --set wants NAME=VALUE\n");
                return -1;
            }
            *eq = '\0';
            if (config_set(cfg, kv, eq + 1, stderr) < 0)
                return -1;
            continue;
        }
        size_t k;
        for (k = 0; k < sizeof(flag_map) / sizeof(flag_map[0]); k++) {
            if (!strcmp(a, flag_map[k].flag))
                break;
        }
        if (k == sizeof(flag_map) / sizeof(flag_map[0]) || i + 1 >= argc) {
            fprintf(stderr, "comfygate: unknown or incomplete option %s\n", a);
            usage(stderr);
            return -1;
        }
        if (config_set(cfg, flag_map[k].name, argv[++i], stderr) < 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    const char *cmd = "serve";
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        i = 2;
    }
    for (int j = 1; j < argc; j++) {
        if (!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) {
            if (i == 2 && strcmp(cmd, "serve") != 0) {
                printf("usage:\n");
                cli_usage(stdout, cmd);
            } else {
                usage(stdout);
            }
            return 0;
        }
        if (!strcmp(argv[j], "--version")) {
            printf("comfygate %s\n", COMFYGATE_VERSION);
            return 0;
        }
    }
    if (!strcmp(cmd, "config")) {
        config_print_table(stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(const struct config *cfg, int argc, char **argv);
    } tools[] = {{"add-workflow", cli_add_workflow}, {"list-workflows", cli_list_workflows},
                 {"health", cli_health}};
    const char *env_file = ".env";
    bool env_file_given = false; /* then it must exist */
    int first = i; /* the command's own arguments, after --env-file is taken out */
    if (i + 1 < argc && !strcmp(argv[i], "--env-file")) {
        env_file = argv[i + 1];
        env_file_given = true;
        first = i + 2;
    }
    for (int j = i; j + 1 < argc; j++) {
        if (!strcmp(argv[j], "--env-file")) {
            env_file = argv[j + 1];
            env_file_given = true;
        }
    }
    static struct config cfg;
    if (!strcmp(cmd, "init")) { /* it writes the file: it need not be there yet */
        if (config_load(&cfg, env_file, false, stderr) < 0)
            return 2;
        return cli_init(&cfg, env_file, argc - first, argv + first);
    }
    for (size_t k = 0; k < sizeof(tools) / sizeof(tools[0]); k++) {
        if (strcmp(cmd, tools[k].name) != 0)
            continue;
        if (config_load(&cfg, env_file, env_file_given, stderr) < 0)
            return 2;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = tools[k].fn(&cfg, argc - first, argv + first);
        curl_global_cleanup();
        return rc;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "worker") != 0) {
        fprintf(stderr, "comfygate: unknown command %s\n", cmd);
        usage(stderr);
        return 2;
    }
    if (config_load(&cfg, env_file, env_file_given, stderr) < 0 || parse_flags(argc, argv, i, &cfg) < 0)
        return 2;
    if (!strcmp(cmd, "worker")) {
        if (!cfg.comfyui_url[0] && !cfg.comfyui_urls[0]) {
            fprintf(stderr, "comfygate: a worker needs COMFYUI_URL or COMFYUI_URLS\n");
            return 2;
        }
        cfg.shared_store = true; /* a worker only ever takes jobs from the shared store */
        return gateway_run(&cfg, GATEWAY_WORKER);
    }
    return gateway_run(&cfg, GATEWAY_SERVE);
}
