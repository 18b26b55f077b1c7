/* seatbelt_apply.h — see seatbelt_apply.c. */
#ifndef SBX_SEATBELT_APPLY_H
#define SBX_SEATBELT_APPLY_H

/* Apply the profile named by SBX_SEATBELT_PROFILE to this process (which
 * then execs the command).  Returns 0 (applied, or none asked for) or -1
 * after saying why on stderr. */
int sbx_seatbelt_apply_from_env(void);

#endif
