/* comfygate — command-line entry point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "gateway.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: comfygate [serve] [options]\n"
            "       comfygate config      print every setting with its default\n"
            "       comfygate --version\n"
            "\n"
            "serve (the default) runs the gateway. Settings come from the environment and an\n"
            "optional .env file (see `comfygate config`); these flags override them:\n"
            "  --host ADDR        HOST\n"
            "  --port N           PORT (0: any free port)\n"
            "  --port-file PATH   PORT_FILE: write the bound port there\n"
            "  --threads N        THREADS (0: one reactor per online CPU)\n"
            "  --env-file PATH    read KEY=VALUE settings from PATH (default: ./.env)\n"
            "  --set NAME=VALUE   any setting by name\n");
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
            usage(stdout);
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
    if (strcmp(cmd, "serve") != 0) {
        fprintf(stderr, "comfygate: unknown command %s\n", cmd);
        usage(stderr);
        return 2;
    }
    const char *env_file = ".env";
    for (int j = i; j + 1 < argc; j++) {
        if (!strcmp(argv[j], "--env-file"))
            env_file = argv[j + 1];
    }
    static struct config cfg;
    if (config_load(&cfg, env_file, stderr) < 0 || parse_flags(argc, argv, i, &cfg) < 0)
        return 2;
    return gateway_run(&cfg);
}
