/* comfy_error — how an attempt on a ComfyUI backend can fail, the API code for each, and what
 * the dispatcher does about it. */
#ifndef COMFYGATE_COMFY_ERROR_H
#define COMFYGATE_COMFY_ERROR_H

enum comfy_err {
    COMFY_OK = 0,
    COMFY_UNREACHABLE, /* refused, reset, dead WebSocket and history, or the backend lost the
                          prompt (restarted): run it on another backend, with backoff */
    COMFY_OOM,         /* CUDA out of memory: POST /free on that backend, then one retry */
    COMFY_TIMEOUT,     /* ran past COMFYUI_TIMEOUT_MS: interrupted there; not retried */
    COMFY_NODE_ERROR,  /* a node raised at run time: never retried */
    COMFY_VALIDATION,  /* ComfyUI refused the graph (node_errors passed on): never retried */
    COMFY_INTERRUPTED, /* interrupted on request (cancel): not retried */
    COMFY_OUTPUT,      /* an output could not be fetched or stored: retried elsewhere */
};

enum comfy_retry {
    COMFY_RETRY_NEVER,
    COMFY_RETRY_OTHER_BACKEND,
    COMFY_RETRY_AFTER_FREE,
};

/* "COMFYUI_UNREACHABLE", ... */
const char *comfy_err_code(enum comfy_err e);
enum comfy_retry comfy_err_retry(enum comfy_err e);

#endif
