/* psc_conf.h - what both modules' configuration merges share: the "not
 * set" value of a numeric field and the merge of one such field. */
#ifndef PSC_CONF_H
#define PSC_CONF_H

/* A numeric field that no directive has set. */
#define PSC_UNSET (-1)

/* out->f: the inner section's add->f unless it left it unset, else the
 * outer base->f. */
#define PSC_MERGE(out, base, add, f) \
    (out)->f = ((add)->f != PSC_UNSET) ? (add)->f : (base)->f

#endif
