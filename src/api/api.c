/* api — route registration for the whole gateway. */
#include "api/api.h"

#include <unistd.h>

#include "gateway.h"

int api_register(struct gateway *gw)
{
    if (gw->role == GATEWAY_WORKER) /* no job API: operations only */
        return api_system_register(gw) < 0 || api_backends_register(gw) < 0 ? -1 : 0;
    if (api_system_register(gw) < 0 || api_backends_register(gw) < 0 ||
        api_jobs_register(gw) < 0 || api_events_register(gw) < 0 ||
        api_workflows_register(gw) < 0 || api_prompt_register(gw) < 0)
        return -1;
    return 0;
}

void api_unregister(struct gateway *gw)
{
    if (gw->static_fd >= 0)
        close(gw->static_fd);
    gw->static_fd = -1;
}
