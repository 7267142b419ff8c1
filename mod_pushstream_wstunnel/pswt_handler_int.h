/* pswt_handler_int.h - what the upgrade handler (pswt_handler.c) and the
 * reading of the back end's answer (pswt_answer.c) share (private;
 * worker thread). */
#ifndef PSWT_HANDLER_INT_H
#define PSWT_HANDLER_INT_H

#include "pswt_handler.h"

/* The back end's answer: status line and fields. */
typedef struct pswt_resp_t {
    int status;
    const char *reason;
    apr_table_t *headers;
} pswt_resp_t;

/* pswt_handler.c.  A back end failure (counted): status with msg. */
int pswt_bad_gateway(request_rec *r, int status, const char *msg);

/* pswt_answer.c.  Status line and fields; interim answers (100, 102, 103)
 * are skipped.  Returns OK or an HTTP status for the client. */
int pswt_read_head(request_rec *r, proxy_conn_rec *be, pswt_resp_t *resp);
/* The back end's fields to the client's answer, hop-by-hop ones left out
 * (final: not a 101, Content-* are httpd's). */
void pswt_copy_headers(request_rec *r, apr_table_t *from, int final);
/* The back end did not switch protocols: its answer is the client's. */
int pswt_relay_answer(request_rec *r, proxy_conn_rec *be, pswt_resp_t *resp);

#endif
