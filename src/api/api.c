/* api — route registration for the whole gateway. */
#include "api/api.h"

#include <unistd.h>

#include "gateway.h"

int api_register(struct gateway *gw)
{
    return api_system_register(gw);
}

void api_unregister(struct gateway *gw)
{
    if (gw->static_fd >= 0)
        close(gw->static_fd);
    gw->static_fd = -1;
}
