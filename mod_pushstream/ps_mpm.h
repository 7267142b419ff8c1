/* ps_mpm.h - does the running event MPM hold many waiting subscribers? */
#ifndef PS_MPM_H
#define PS_MPM_H

#include <httpd.h>

/* post_config: under the event MPM, one warning (PS0110) naming each
 * directive whose value keeps a child from holding more than a few hundred
 * suspended connections, with the value to set; nothing when they are fine
 * or under another MPM. */
void ps_mpm_check(apr_pool_t *ptemp, server_rec *s);

#endif
