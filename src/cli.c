/* cli — see cli.h. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "comfy/comfy_fleet.h"
#include "core/buf.h"
#include "jobs/template.h"
#include "jobs/workflow.h"
#include "jobs/workflow_store.h"
#include "store/store.h"

static const struct {
    const char *cmd, *args, *help;
} commands[] = {
    {"serve", "[--host ADDR] [--port N] [--port-file PATH] [--threads N] [--set NAME=VALUE]",
     "run the gateway: the API and the dispatcher (the default command)"},
    {"worker", "[--host ADDR] [--port N] [--port-file PATH] [--threads N] [--set NAME=VALUE]",
     "run a dispatcher only (SHARED_STORE on): it claims queued jobs from the store the serve "
     "instances write, runs them on its backends, and answers only /health, /ready, /backends"},
    {"init", "", "create the data directory and database, and an example .env (never overwritten)"},
    {"add-workflow", "FILE --id ID [--name NAME] [--description TEXT] [--schema FILE]",
     "store a workflow template (a ComfyUI API-format graph, or a whole workflow document) as a "
     "new version of ID; a running gateway loads it at its next start (POST /workflows changes "
     "a running one)"},
    {"list-workflows", "[--all]", "the stored and bundled workflows (--all: every version)"},
    {"health", "[--timeout-ms N]",
     "check every configured backend (/system_stats, /queue) once; exit 0 if all are up"},
    {"config", "", "every setting with its default"},
};

void cli_usage(FILE *out, const char *cmd)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (cmd && strcmp(cmd, commands[i].cmd) != 0)
            continue;
        fprintf(out, "  comfygate %s %s\n      %s\n", commands[i].cmd, commands[i].args,
                commands[i].help);
    }
    if (!cmd)
        fprintf(out, "\nSettings come from the environment and an optional .env file (--env-file "
                     "PATH, default ./.env); see `comfygate config`. `comfygate CMD --help` "
                     "explains one command.\n");
}

/* --- the database ------------------------------------------------------------------------------ */

static int db_open(const struct config *cfg, struct store *st)
{
    char path[1200], err[512];
    if (mkdir(cfg->storage_local_path, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "comfygate: cannot create %s: %s\n", cfg->storage_local_path,
                strerror(errno));
        return -1;
    }
    const char *u = cfg->database_url;
    if (!u[0])
        snprintf(path, sizeof(path), "%s/comfygate.db", cfg->storage_local_path);
    else
        snprintf(path, sizeof(path), "%s", u + (!strncmp(u, "sqlite://", 9) ? 9 : 7));
    struct store_config sc = {.path = path, .synchronous_full = true};
    memset(st, 0, sizeof(*st));
    if (store_open(st, &sc, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: %s\n", err);
        return -1;
    }
    return 0;
}

/* Bundled templates, then every stored version (what the gateway would load at start). */
static int load_set(const struct config *cfg, struct store *st, struct workflow_set *set)
{
    char err[512];
    struct stat sb;
    workflow_set_init(set, 100000);
    if (cfg->workflows_dir[0] && stat(cfg->workflows_dir, &sb) == 0 &&
        workflow_set_load_dir(set, cfg->workflows_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: WORKFLOWS_DIR: %s\n", err);
        return -1;
    }
    if (workflow_store_load(st, set, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: %s\n", err);
        return -1;
    }
    return 0;
}

/* --- init --------------------------------------------------------------------------------------- */

static int write_env_example(const char *path)
{
    if (access(path, F_OK) == 0) {
        printf("%s exists: left as it is\n", path);
        return 0;
    }
    FILE *f = fopen(path, "wx");
    if (!f) {
        fprintf(stderr, "comfygate: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char r[18];
    char key[40] = "";
    if (getrandom(r, sizeof(r), 0) == sizeof(r)) {
        for (size_t i = 0; i < sizeof(r); i++)
            snprintf(key + 2 * i, 3, "%02x", r[i]);
    }
    fprintf(f, "# comfygate settings (KEY=VALUE; the real environment wins). Every setting, with\n"
               "# its default, is listed by `comfygate config`; uncomment what you change.\n\n"
               "# HOST=127.0.0.1\n# PORT=8080\n# COMFYUI_URLS=http://10.0.0.1:8188,"
               "http://10.0.0.2:8188;weight=2\n# STORAGE_LOCAL_PATH=./data\n\n"
               "# Authentication: required before listening on anything but loopback.\n"
               "# A fresh admin key, generated for you:\n# API_KEYS=%s:admin\n"
               "# JWT_SECRET=<at least 32 random bytes>\n\n"
               "# WEBHOOK_SECRET=whsec_<base64 of 24-64 random bytes>\n"
               "# RATE_LIMIT_MAX=600\n# CORS_ORIGINS=https://app.example.com\n", key);
    if (fclose(f) != 0)
        return -1;
    printf("wrote %s (every line commented: edit it)\n", path);
    return 0;
}

int cli_init(const struct config *cfg, const char *env_file, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char outputs[1100];
    struct store st;
    if (db_open(cfg, &st) < 0)
        return 1;
    store_close(&st);
    snprintf(outputs, sizeof(outputs), "%s/outputs", cfg->storage_local_path);
    if (mkdir(outputs, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "comfygate: cannot create %s: %s\n", outputs, strerror(errno));
        return 1;
    }
    printf("data directory %s ready (database, outputs/)\n", cfg->storage_local_path);
    return write_env_example(env_file) < 0 ? 1 : 0;
}

/* --- add-workflow / list-workflows -------------------------------------------------------------- */

static json_t *load_json_file(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fprintf(stderr, "comfygate: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
    return j;
}

/* A schema with every placeholder (of the template and its overlays) as an input of any type,
 * for a graph given without one. */
static json_t *schema_from_placeholders(const json_t *doc)
{
    json_t *props = json_object();
    json_t *parts = json_array();
    json_array_append(parts, json_object_get(doc, "template"));
    size_t i;
    json_t *ov;
    json_array_foreach(json_object_get(doc, "overlays"), i, ov)
        json_array_append(parts, json_object_get(ov, "template"));
    json_t *part;
    json_array_foreach(parts, i, part)
    {
        json_t *names = template_placeholders(part, NULL);
        size_t k;
        json_t *n;
        json_array_foreach(names, k, n)
            json_object_set_new(props, json_string_value(n), json_object());
        json_decref(names);
    }
    json_decref(parts);
    return json_pack("{s:s, s:o}", "type", "object", "properties", props);
}

struct add_opts {
    const char *file, *id, *name, *description, *schema;
};

static int add_args(int argc, char **argv, struct add_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 0; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--id")            ? &o->id
                           : !strcmp(argv[i], "--name")        ? &o->name
                           : !strcmp(argv[i], "--description") ? &o->description
                           : !strcmp(argv[i], "--schema")      ? &o->schema
                                                               : NULL;
        if (dst && i + 1 < argc)
            *dst = argv[++i];
        else if (!dst && argv[i][0] != '-' && !o->file)
            o->file = argv[i];
        else
            return -1;
    }
    return o->file && o->id ? 0 : -1;
}

/* The workflow document: FILE is one already, or it is the graph (template). */
static json_t *add_document(const struct add_opts *o)
{
    json_t *f = load_json_file(o->file);
    if (!f)
        return NULL;
    json_t *doc = json_object_get(f, "template") ? json_incref(f)
                                                 : json_pack("{s:O}", "template", f);
    json_decref(f);
    if (o->schema) {
        json_t *s = load_json_file(o->schema);
        if (!s) {
            json_decref(doc);
            return NULL;
        }
        json_object_set_new(doc, "schema", s);
    } else if (!json_object_get(doc, "schema")) {
        json_object_set_new(doc, "schema", schema_from_placeholders(doc));
    }
    if (o->name)
        json_object_set_new(doc, "name", json_string(o->name));
    if (o->description)
        json_object_set_new(doc, "description", json_string(o->description));
    return doc;
}

int cli_add_workflow(const struct config *cfg, int argc, char **argv)
{
    struct add_opts o;
    if (add_args(argc, argv, &o) < 0) {
        cli_usage(stderr, "add-workflow");
        return 2;
    }
    json_t *doc = add_document(&o);
    if (!doc)
        return 1;
    struct workflow *w = calloc(1, sizeof(*w));
    char err[512];
    json_object_del(doc, "id");
    if (!w || workflow_parse(doc, o.id, w, err, sizeof(err)) < 0) {
        fprintf(stderr, "comfygate: %s: %s\n", o.file, w ? err : "out of memory");
        json_decref(doc);
        if (w)
            workflow_free(w); /* what the parse built before it failed */
        free(w);
        return 1;
    }
    json_decref(doc);
    struct store st;
    struct workflow_set set;
    if (db_open(cfg, &st) < 0) {
        workflow_free(w);
        free(w);
        return 1;
    }
    int rc = 1;
    if (load_set(cfg, &st, &set) == 0) {
        bool live = workflow_set_get(&set, o.id, 0) != NULL;
        int version = 1;
        for (size_t i = 0; i < set.n; i++) {
            if (!strcmp(set.items[i]->id, o.id) && set.items[i]->version >= version)
                version = set.items[i]->version + 1;
        }
        w->version = version;
        snprintf(w->created_by, sizeof(w->created_by), "cli:%s", getenv("USER") ?: "?");
        w->created_ms = (int64_t)time(NULL) * 1000;
        struct workflow_save sv = {.change = live ? WORKFLOW_UPDATED : WORKFLOW_CREATED};
        snprintf(sv.id, sizeof(sv.id), "%s", o.id);
        snprintf(sv.actor, sizeof(sv.actor), "%s", w->created_by);
        snprintf(sv.peer, sizeof(sv.peer), "local");
        sv.row = workflow_store_snapshot(w);
        if (sv.row)
            json_object_set_new(sv.row, "version", json_integer(version));
        if (sv.row && workflow_store_save_sync(&st, &sv) == SQLITE_OK) {
            printf("workflow %s version %d stored (hash %.12s)\n", o.id, version, w->hash);
            rc = 0;
        } else {
            fprintf(stderr, "comfygate: cannot store workflow %s\n", o.id);
        }
    }
    workflow_free(w);
    free(w);
    workflow_set_free(&set);
    store_close(&st);
    return rc;
}

int cli_list_workflows(const struct config *cfg, int argc, char **argv)
{
    bool all = argc > 0 && !strcmp(argv[0], "--all");
    if (argc > (all ? 1 : 0)) {
        cli_usage(stderr, "list-workflows");
        return 2;
    }
    struct store st;
    struct workflow_set set;
    if (db_open(cfg, &st) < 0)
        return 1;
    int rc = load_set(cfg, &st, &set) == 0 ? 0 : 1;
    if (rc == 0)
        printf("%-32s %7s  %-12s  %-7s  %-7s  %s\n", "ID", "VERSION", "HASH", "SOURCE", "STATE",
               "NAME");
    for (size_t i = 0; rc == 0 && i < set.n; i++) {
        const struct workflow *w = set.items[i];
        const struct workflow *latest = workflow_set_get(&set, w->id, 0);
        bool newest = !latest ? workflow_set_get(&set, w->id, w->version + 1) == NULL
                              : latest == w;
        if (!all && !newest)
            continue;
        printf("%-32s %7d  %.12s  %-7s  %-7s  %s\n", w->id, w->version, w->hash,
               w->bundled ? "bundled" : "stored", w->deleted ? "deleted" : "live", w->name);
    }
    workflow_set_free(&set);
    store_close(&st);
    return rc;
}

/* --- health ------------------------------------------------------------------------------------- */

struct probe {
    CURL *easy;
    struct buf body;
    const char *what; /* "system_stats" or "queue" */
    size_t backend;
};

struct backend_health {
    bool up;
    double ms;
    char version[32];
    char error[160];
    uint64_t vram_free, vram_total;
    int running, pending;
};

static size_t probe_write(char *p, size_t size, size_t n, void *ud)
{
    struct probe *pr = ud;
    return buf_append(&pr->body, p, size * n) < 0 ? 0 : size * n;
}

static void probe_add(CURLM *m, struct probe *pr, const char *base, const char *path,
                      long timeout_ms)
{
    char url[700];
    snprintf(url, sizeof(url), "%s%s", base, path);
    buf_init(&pr->body, 8 << 20);
    pr->easy = curl_easy_init();
    curl_easy_setopt(pr->easy, CURLOPT_URL, url);
    curl_easy_setopt(pr->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(pr->easy, CURLOPT_WRITEFUNCTION, probe_write);
    curl_easy_setopt(pr->easy, CURLOPT_WRITEDATA, pr);
    curl_easy_setopt(pr->easy, CURLOPT_PRIVATE, pr);
    curl_easy_setopt(pr->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_multi_add_handle(m, pr->easy);
}

static void probe_read(struct probe *pr, CURLcode rc, struct backend_health *h)
{
    long status = 0;
    curl_easy_getinfo(pr->easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = rc == CURLE_OK && status == 200 ? json_loadb(pr->body.data, pr->body.len, 0, NULL)
                                                : NULL;
    if (!strcmp(pr->what, "queue")) {
        h->running = (int)json_array_size(json_object_get(j, "queue_running"));
        h->pending = (int)json_array_size(json_object_get(j, "queue_pending"));
    } else if (!j) {
        snprintf(h->error, sizeof(h->error), "%s",
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "bad /system_stats answer");
        if (rc == CURLE_OK)
            snprintf(h->error, sizeof(h->error), "/system_stats answered HTTP %ld", status);
    } else {
        double t = 0;
        curl_easy_getinfo(pr->easy, CURLINFO_TOTAL_TIME, &t);
        h->up = true;
        h->ms = t * 1000;
        json_t *sys = json_object_get(j, "system");
        json_t *dev = json_array_get(json_object_get(j, "devices"), 0);
        snprintf(h->version, sizeof(h->version), "%s",
                 json_string_value(json_object_get(sys, "comfyui_version")) ?: "?");
        h->vram_free = (uint64_t)json_integer_value(json_object_get(dev, "vram_free"));
        h->vram_total = (uint64_t)json_integer_value(json_object_get(dev, "vram_total"));
    }
    json_decref(j);
}

/* Every probe at once, curl's own loop (this is not a reactor thread). */
static void probes_run(CURLM *m, struct backend_health *hs)
{
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            struct probe *pr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&pr);
            probe_read(pr, msg->data.result, &hs[pr->backend]);
        }
        if (running)
            curl_multi_poll(m, NULL, 0, 200, NULL);
    }
}

int cli_health(const struct config *cfg, int argc, char **argv)
{
    long timeout_ms = 5000;
    if (argc == 2 && !strcmp(argv[0], "--timeout-ms"))
        timeout_ms = strtol(argv[1], NULL, 10);
    else if (argc != 0) {
        cli_usage(stderr, "health");
        return 2;
    }
    const char *list = cfg->comfyui_urls[0] ? cfg->comfyui_urls : cfg->comfyui_url;
    static struct comfy_backend_spec specs[COMFY_MAX_BACKENDS];
    char err[256];
    int n = list[0] ? comfy_backend_specs_parse(list, specs, COMFY_MAX_BACKENDS, err,
                                                sizeof(err))
                    : 0;
    if (n <= 0) {
        fprintf(stderr, "comfygate: %s\n", n < 0 ? err : "no COMFYUI_URL or COMFYUI_URLS set");
        return 2;
    }
    struct backend_health *hs = calloc((size_t)n, sizeof(*hs));
    struct probe *prs = calloc((size_t)n * 2, sizeof(*prs));
    CURLM *m = curl_multi_init();
    for (int i = 0; hs && prs && i < n; i++) {
        prs[2 * i] = (struct probe){.what = "system_stats", .backend = (size_t)i};
        prs[2 * i + 1] = (struct probe){.what = "queue", .backend = (size_t)i};
        probe_add(m, &prs[2 * i], specs[i].url, "/system_stats", timeout_ms);
        probe_add(m, &prs[2 * i + 1], specs[i].url, "/queue", timeout_ms);
    }
    if (hs && prs)
        probes_run(m, hs);
    int down = 0;
    printf("%-40s %-5s %8s  %-8s %7s %7s  %-17s %s\n", "BACKEND", "STATE", "LATENCY", "VERSION",
           "RUNNING", "PENDING", "VRAM FREE/TOTAL", "ERROR");
    for (int i = 0; hs && i < n; i++) {
        struct backend_health *h = &hs[i];
        down += !h->up;
        char vram[40] = "-";
        if (h->vram_total)
            snprintf(vram, sizeof(vram), "%.1f/%.1f GiB", h->vram_free / 1073741824.0,
                     h->vram_total / 1073741824.0);
        printf("%-40s %-5s %6.1fms  %-8s %7d %7d  %-17s %s\n", specs[i].url, h->up ? "up" : "DOWN",
               h->ms, h->up ? h->version : "-", h->running, h->pending, vram, h->error);
    }
    for (int i = 0; prs && i < 2 * n; i++) {
        curl_multi_remove_handle(m, prs[i].easy);
        curl_easy_cleanup(prs[i].easy);
        buf_free(&prs[i].body);
    }
    curl_multi_cleanup(m);
    free(prs);
    free(hs);
    printf("%d of %d backends up\n", n - down, n);
    return down ? 1 : 0;
}
