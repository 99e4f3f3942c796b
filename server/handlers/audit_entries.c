/* STUB: answers 500 until the resource is implemented. */
#include "server/http_app.h"
#include "server/http_response.h"

void audit_list_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    (void)app;
    (void)m;
    http_send_error(req, 500, "internal error");
}
