/* Static verification of a pickle from the network before _pickle runs it
 * (ext types 123-126, see datetime_ext.c and docs/protocol.rst). */
#ifndef PSEUD_PICKLE_CHECK_H
#define PSEUD_PICKLE_CHECK_H

#include <stddef.h>

/* the longest pickle accepted: the longest datetime with a dateutil tzfile
 * of any IANA zone is 2.9 kB as dateutil >= 3 pickles it, 4.3 kB as 2.x
 * does (measured over every zone at protocols 2-5) */
#define PICKLE_CHECK_MAX_LEN 8192
/* deepest nesting of tuples, lists and dicts (a tzfile needs 3) */
#define PICKLE_CHECK_MAX_DEPTH 16

/* What a pickle may do with a global it names, beyond calling it. */
enum {
    PICKLE_NEWOBJ = 1,      /* NEWOBJ may instantiate it */
    PICKLE_REDUCE_NEW = 2,  /* a REDUCE of it makes a fresh object (for BUILD) */
    PICKLE_BUILD = 4,       /* the object NEWOBJ or REDUCE made may then be BUILT */
    PICKLE_MANY = 8,        /* any number of such objects; otherwise the pickle
                               may make one object by NEWOBJ or REDUCE_NEW */
};

/* A global with flags: module and name as the pickle spells them. */
typedef struct {
    const char *module;
    const char *name;
    int flags;
} pickle_class_name;

/* Run the pickle's opcodes over a model of _pickle's stack (kinds and
 * nesting depth, no objects) and refuse anything a datetime or tzinfo
 * pickle never does, so that whatever _pickle then builds is bounded and
 * every BUILD lands on a fresh object. The rules:
 *  - length <= PICKLE_CHECK_MAX_LEN; only the opcodes of protocols 0-5 that
 *    such pickles use (no persistent ids, extension registry, out-of-band
 *    buffers, sets, DUP/POP, NEWOBJ_EX, INST/OBJ);
 *  - every counted argument fits in the data; memo indices <= length;
 *  - no opcode runs past the end of its FRAME, and no FRAME starts inside
 *    another (_pickle would read other opcodes than these);
 *  - stack and mark underflow are refused; nesting <= PICKLE_CHECK_MAX_DEPTH;
 *  - a memo GET may not fetch a tuple, list or dict (no shared or
 *    self-referencing containers: hashing one costs what its tree does);
 *  - APPEND(S) only onto a list, SETITEM(S) only into a dict (_pickle would
 *    call .append/.extend/__setitem__ of any other object);
 *  - REDUCE's arguments are a tuple;
 *  - NEWOBJ only of a class in `classes` with PICKLE_NEWOBJ (named by
 *    GLOBAL or STACK_GLOBAL of two literal strings); one object made by
 *    NEWOBJ or by a REDUCE of a PICKLE_REDUCE_NEW global, except the
 *    PICKLE_MANY ones (dateutil 2.x's _ttinfo records);
 *  - BUILD only on such a new object, if its class allows it, while it is
 *    still on the stack (not yet used, not fetched from the memo), at most
 *    once, and with a dict (never the (dict, slots) pair, whose setattr
 *    could set __class__); BUILD on anything else is refused, so no cached
 *    or shared tzinfo can be changed;
 *  - a memo GET of such a new object only once it has been BUILT (it may
 *    then be shared, as dateutil 2.x shares its _ttinfo records; it can
 *    never be BUILT again).
 * Returns 0, or -1 with ValueError set. */
int pickle_check(const unsigned char *data, size_t len,
                 const pickle_class_name *classes, size_t n_classes);

#endif
