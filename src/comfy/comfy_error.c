/* comfy_error — see comfy_error.h. */
#include "comfy/comfy_error.h"

const char *comfy_err_code(enum comfy_err e)
{
    switch (e) {
    case COMFY_OK: return "OK";
    case COMFY_UNREACHABLE: return "COMFYUI_UNREACHABLE";
    case COMFY_OOM: return "COMFYUI_OOM";
    case COMFY_TIMEOUT: return "COMFYUI_TIMEOUT";
    case COMFY_NODE_ERROR: return "COMFYUI_NODE_ERROR";
    case COMFY_VALIDATION: return "COMFYUI_VALIDATION";
    case COMFY_INTERRUPTED: return "COMFYUI_INTERRUPTED";
    case COMFY_OUTPUT: return "COMFYUI_OUTPUT_ERROR";
    }
    return "COMFYUI_ERROR";
}

enum comfy_retry comfy_err_retry(enum comfy_err e)
{
    switch (e) {
    case COMFY_UNREACHABLE:
    case COMFY_OUTPUT: return COMFY_RETRY_OTHER_BACKEND;
    case COMFY_OOM: return COMFY_RETRY_AFTER_FREE;
    default: return COMFY_RETRY_NEVER;
    }
}
