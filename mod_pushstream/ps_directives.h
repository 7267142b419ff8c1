/* ps_directives.h - the directive table of mod_pushstream (ps_directives.c). */
#ifndef PS_DIRECTIVES_H
#define PS_DIRECTIVES_H

#include <http_config.h>

extern const command_rec ps_cmds[];

#endif
