/* ps_config.h - creation, merging and whole-config checks of the
 * configuration records (ps_conf_types.h); the directives that fill them
 * are in ps_directives.c. */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <httpd.h>
#include <http_config.h>

#include "ps_conf_types.h"

/* Keys of the ps_config_list() lists of location records
 * (ps_config_note()). */
#define PS_LOCS_KEY     "pushstream-locations"
#define PS_PATHS_KEY    "pushstream-channels-paths"
#define PS_WILDCARD_KEY "pushstream-wildcard-max"

/* The PushStreamPublisherListen of the configuration (ps_publisten_t). */
apr_array_header_t *ps_config_publistens(apr_pool_t *pconf);

void *ps_create_srv_conf(apr_pool_t *p, server_rec *s);
void *ps_merge_srv_conf(apr_pool_t *p, void *base, void *add);
void *ps_create_dir_conf(apr_pool_t *p, char *dir);
void *ps_merge_dir_conf(apr_pool_t *p, void *base, void *add);

/* An array kept as pconf userdata under key (records of the config read
 * so far, for checks once every directive is read). */
apr_array_header_t *ps_config_list(apr_pool_t *pconf, const char *key,
                                   int elt_size);

/* "file:line" of the directive being read. */
const char *ps_config_where(cmd_parms *cmd);

/* Checks that need every directive read (configtest included). */
int ps_config_check(apr_pool_t *pconf, server_rec *s);

/* 1 when the configuration has any PushStream location. */
int ps_config_in_use(apr_pool_t *pconf);

/* Resolve defaults of every server (limits) once the config is read. */
void ps_config_finish(apr_pool_t *pconf, server_rec *s);

/* Largest min-length of every padding rule of the config (the padding
 * never exceeds it, as in nginx). */
apr_size_t ps_config_padding_max(apr_pool_t *pconf);

/* Notes the location being configured (d) in the list under key, for the
 * checks of ps_config_check(). */
void ps_config_note(cmd_parms *cmd, const char *key, ps_dir_conf_t *d);

/* The config-wide largest padding length (pconf userdata), raised by
 * PushStreamPaddingByUserAgent. */
apr_size_t *ps_config_padding_slot(apr_pool_t *pconf);

#endif
