/* The static verifier of datetime/tzinfo pickles (pickle_check.h says the
 * rules). It runs every opcode over a model of _pickle's stack, memo and
 * marks that knows only the kind of each entry (string, global, tuple,
 * list, dict, an object BUILD may fill, anything else), its nesting depth
 * and which of the new objects were BUILT, so it costs O(len) and never
 * creates a Python object. _pickle then builds
 * the real thing, resolving globals through the restricted find_class of
 * datetime_ext.c; what the model refused never reaches it. */
#include <Python.h>

#include "pickle_check.h"

#include <stdint.h>
#include <string.h>

enum {
    K_ATOM,         /* int, float, bytes, None, a REDUCE result... */
    K_STR,          /* a str literal: s/n point into the pickle */
    K_GLOBAL,       /* from GLOBAL or STACK_GLOBAL */
    K_TUPLE,
    K_LIST,
    K_DICT,
    K_NEW,          /* a new object (NEWOBJ, REDUCE_NEW) BUILD may fill */
};

typedef struct {
    unsigned char kind;
    unsigned char depth;        /* containers: 1 + deepest item */
    unsigned char flags;        /* K_GLOBAL: its PICKLE_* flags */
    unsigned char set;          /* memo slots: filled */
    size_t obj;                 /* K_NEW: its index in model.built */
    const unsigned char *s;     /* K_STR: the text (not NUL-terminated); */
    size_t n;                   /* K_GLOBAL: the module (also kept on what */
    const unsigned char *s2;    /* K_GLOBAL: the name    it made, to name it) */
    size_t n2;
} entry;

typedef struct {
    const unsigned char *start, *p, *end;
    const unsigned char *frame_end;     /* end of the current FRAME, or NULL */
    entry *stack;
    size_t top;                 /* entries on the stack */
    size_t *marks;
    size_t n_marks;
    entry *memo;
    size_t memo_size;           /* slots (len + 1) */
    size_t memo_len;            /* distinct slots filled: MEMOIZE's index */
    const pickle_class_name *classes;
    size_t n_classes;
    int one_made;               /* the one object not PICKLE_MANY was made */
    unsigned char *built;       /* per new object: BUILT already (len + 1) */
    size_t n_objs;
} model;

static int
refuse(const char *why)
{
    PyErr_Format(PyExc_ValueError, "pseud: pickle refused: %s", why);
    return -1;
}

/* refuse, naming the global `cls` (module.qualname) that the entry is or
 * was made by */
static int
refuse_named(const char *what, const entry *cls, const char *why)
{
    PyObject *mod = PyUnicode_DecodeUTF8((const char *)cls->s,
                                         (Py_ssize_t)(cls->n > 200 ? 200 : cls->n), "replace");
    PyObject *name = mod ? PyUnicode_DecodeUTF8((const char *)cls->s2,
                                                (Py_ssize_t)(cls->n2 > 200 ? 200 : cls->n2),
                                                "replace") : NULL;
    if (name != NULL)
        PyErr_Format(PyExc_ValueError, "pseud: pickle refused: %s %U.%U: %s",
                     what, mod, name, why);
    Py_XDECREF(mod);
    Py_XDECREF(name);
    return -1;
}

static int
take(model *m, size_t n, const unsigned char **arg)
{
    if ((size_t)(m->end - m->p) < n)
        return refuse("truncated");
    *arg = m->p;
    m->p += n;
    return 0;
}

/* one text line (protocol 0/1 arguments), without its newline */
static int
take_line(model *m, const unsigned char **arg, size_t *n)
{
    const unsigned char *nl = memchr(m->p, '\n', (size_t)(m->end - m->p));
    if (nl == NULL)
        return refuse("truncated");
    *arg = m->p;
    *n = (size_t)(nl - m->p);
    m->p = nl + 1;
    return 0;
}

static uint64_t
le_read(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int
push(model *m, unsigned char kind, unsigned depth)
{
    if (depth > PICKLE_CHECK_MAX_DEPTH)
        return refuse("nested too deep");
    /* every push consumes at least one opcode byte: the stack, sized len + 1,
     * cannot overflow; checked anyway */
    if (m->top > (size_t)(m->end - m->start))
        return refuse("stack too large");
    entry *e = &m->stack[m->top++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->depth = (unsigned char)depth;
    return 0;
}

/* the stack floor: entries below the innermost mark belong to outer code */
static size_t
floor_of(const model *m)
{
    return m->n_marks ? m->marks[m->n_marks - 1] : 0;
}

static int
pop(model *m, entry *out)
{
    if (m->top <= floor_of(m))
        return refuse("stack underflow");
    *out = m->stack[--m->top];
    return 0;
}

/* Pop everything down to the innermost mark (and the mark); *depth gets the
 * deepest popped entry's depth, *count how many. */
static int
pop_mark(model *m, unsigned *depth, size_t *count)
{
    if (m->n_marks == 0)
        return refuse("no MARK");
    size_t fl = m->marks[--m->n_marks];
    unsigned d = 0;
    for (size_t i = fl; i < m->top; i++) {
        if (m->stack[i].depth > d)
            d = m->stack[i].depth;
    }
    *count = m->top - fl;
    *depth = d;
    m->top = fl;
    return 0;
}

static entry *
peek(model *m)
{
    return m->top > floor_of(m) ? &m->stack[m->top - 1] : NULL;
}

/* add an item of depth d into the container on top (of `kind`) */
static int
fill(model *m, unsigned char kind, unsigned d, const char *why)
{
    entry *t = peek(m);
    if (t == NULL || t->kind != kind)
        return refuse(why);
    if (d + 1 > PICKLE_CHECK_MAX_DEPTH)
        return refuse("nested too deep");
    if (d + 1 > t->depth)
        t->depth = (unsigned char)(d + 1);
    return 0;
}

static int
memo_put(model *m, uint64_t idx)
{
    entry *t = peek(m);
    if (t == NULL)
        return refuse("memo put of an empty stack");
    if (idx >= m->memo_size)
        return refuse("memo index out of range");
    if (!m->memo[idx].set)
        m->memo_len++;
    m->memo[idx] = *t;
    m->memo[idx].set = 1;
    return 0;
}

static int
memo_get(model *m, uint64_t idx)
{
    if (idx >= m->memo_size || !m->memo[idx].set)
        return refuse("memo index not set");
    entry e = m->memo[idx];
    if (e.kind == K_TUPLE || e.kind == K_LIST || e.kind == K_DICT)
        return refuse("a shared tuple, list or dict");
    if (e.kind == K_NEW) {
        /* a second reference to it: only once BUILT, so that no BUILD can
         * change it after a use */
        if (!m->built[e.obj])
            return refuse("the NEWOBJ object fetched from the memo before its BUILD: "
                          "it may not be BUILT after a use");
        e.kind = K_ATOM;
    }
    if (push(m, e.kind, e.depth) < 0)
        return -1;
    m->stack[m->top - 1] = e;
    m->stack[m->top - 1].set = 0;
    return 0;
}

static int
parse_decimal(const unsigned char *s, size_t n, size_t limit, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return refuse("malformed memo index");
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return refuse("malformed memo index");
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > limit)
            return refuse("memo index out of range");
    }
    *out = v;
    return 0;
}

static int
same(const unsigned char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static unsigned char
class_flags(const model *m, const unsigned char *mod, size_t mod_n,
            const unsigned char *name, size_t name_n)
{
    for (size_t i = 0; i < m->n_classes; i++) {
        if (same(mod, mod_n, m->classes[i].module)
            && same(name, name_n, m->classes[i].name))
            return (unsigned char)m->classes[i].flags;
    }
    return 0;
}

static int
push_global(model *m, const unsigned char *mod, size_t mod_n,
            const unsigned char *name, size_t name_n)
{
    if (push(m, K_GLOBAL, 0) < 0)
        return -1;
    entry *e = &m->stack[m->top - 1];
    e->flags = class_flags(m, mod, mod_n, name, name_n);
    e->s = mod;
    e->n = mod_n;
    e->s2 = name;
    e->n2 = name_n;
    return 0;
}

/* Push the object that NEWOBJ or a REDUCE made of the global `cls`: one
 * that BUILD may fill if its class allows it, else an atom that remembers
 * its maker (to name it if BUILT). `op` names the opcode for refusals. */
static int
push_made(model *m, const entry *cls, const char *op)
{
    if (!(cls->flags & PICKLE_MANY)) {
        if (m->one_made) {
            if (strcmp(op, "NEWOBJ") == 0)
                return refuse("more than one NEWOBJ");
            return refuse_named("REDUCE of", cls, "a second new object in one pickle");
        }
        m->one_made = 1;
    }
    int buildable = (cls->flags & PICKLE_BUILD) != 0;
    /* every new object costs an opcode: built[], len + 1 long, has room */
    if (buildable && m->n_objs > (size_t)(m->end - m->start))
        return refuse("too many objects");
    if (push(m, buildable ? K_NEW : K_ATOM, 0) < 0)
        return -1;
    entry *e = &m->stack[m->top - 1];
    e->s = cls->s;
    e->n = cls->n;
    e->s2 = cls->s2;
    e->n2 = cls->n2;
    if (buildable) {
        e->obj = m->n_objs++;
        m->built[e->obj] = 0;
    }
    return 0;
}

/* counted arguments: an n-byte little-endian length, then that many bytes */
static int
skip_counted(model *m, int size, int is_signed)
{
    const unsigned char *arg;
    if (take(m, (size_t)size, &arg) < 0)
        return -1;
    uint64_t n = le_read(arg, size);
    if (is_signed && (n & 0x80000000u))
        return refuse("negative length");
    if (n > (uint64_t)(m->end - m->p))
        return refuse("truncated");
    m->p += n;
    return 0;
}

static int
step(model *m, unsigned char op, int *done)
{
    const unsigned char *arg = NULL, *arg2 = NULL;
    size_t n, n2;
    entry a, b;
    unsigned d;
    uint64_t idx;

    switch (op) {
    case 0x80:                              /* PROTO */
        return take(m, 1, &arg);
    case 0x95:                              /* FRAME */
        if (take(m, 8, &arg) < 0)
            return -1;
        if (le_read(arg, 8) > (uint64_t)(m->end - m->p))
            return refuse("frame longer than the data");
        if (m->frame_end != NULL)
            return refuse("a frame inside a frame");
        m->frame_end = m->p + le_read(arg, 8);
        return 0;
    case '.':                               /* STOP */
        if (m->n_marks != 0 || m->top != 1)
            return refuse("STOP with a malformed stack");
        *done = 1;
        return 0;

    /* atoms */
    case 'N': case 0x88: case 0x89:         /* None, NEWTRUE, NEWFALSE */
        return push(m, K_ATOM, 0);
    case 'K': case 'M': case 'J': case 'G': /* BININT1/2, BININT, BINFLOAT */
        if (take(m, op == 'K' ? 1 : op == 'M' ? 2 : op == 'J' ? 4 : 8, &arg) < 0)
            return -1;
        return push(m, K_ATOM, 0);
    case 0x8a: case 'U': case 'C':          /* LONG1, SHORT_BINSTRING/BYTES */
        return skip_counted(m, 1, 0) < 0 ? -1 : push(m, K_ATOM, 0);
    case 0x8b: case 'T':                    /* LONG4, BINSTRING */
        return skip_counted(m, 4, 1) < 0 ? -1 : push(m, K_ATOM, 0);
    case 'B':                               /* BINBYTES */
        return skip_counted(m, 4, 0) < 0 ? -1 : push(m, K_ATOM, 0);
    case 0x8e:                              /* BINBYTES8 */
        return skip_counted(m, 8, 0) < 0 ? -1 : push(m, K_ATOM, 0);
    case 'F': case 'I': case 'L': case 'S': case 'V':   /* protocol 0 text */
        return take_line(m, &arg, &n) < 0 ? -1 : push(m, K_ATOM, 0);
    case 0x8c: case 'X': case 0x8d: {       /* SHORT_BINUNICODE, BINUNICODE(8) */
        int size = op == 0x8c ? 1 : op == 'X' ? 4 : 8;
        const unsigned char *before = m->p;
        if (skip_counted(m, size, 0) < 0 || push(m, K_STR, 0) < 0)
            return -1;
        m->stack[m->top - 1].s = before + size;
        m->stack[m->top - 1].n = (size_t)(m->p - before) - (size_t)size;
        return 0;
    }

    /* globals */
    case 'c':                               /* GLOBAL module\nname\n */
        if (take_line(m, &arg, &n) < 0 || take_line(m, &arg2, &n2) < 0)
            return -1;
        return push_global(m, arg, n, arg2, n2);
    case 0x93:                              /* STACK_GLOBAL */
        if (pop(m, &b) < 0 || pop(m, &a) < 0)
            return -1;
        if (a.kind != K_STR || b.kind != K_STR)
            return refuse("STACK_GLOBAL of non-strings");
        return push_global(m, a.s, a.n, b.s, b.n);

    /* containers */
    case ')':
        return push(m, K_TUPLE, 1);
    case ']':
        return push(m, K_LIST, 1);
    case '}':
        return push(m, K_DICT, 1);
    case 0x85: case 0x86: case 0x87: {      /* TUPLE1..3 */
        d = 0;
        for (int i = 0; i < op - 0x84; i++) {
            if (pop(m, &a) < 0)
                return -1;
            if (a.depth > d)
                d = a.depth;
        }
        return push(m, K_TUPLE, d + 1);
    }
    case '(':                               /* MARK */
        if (m->n_marks > (size_t)(m->end - m->start))
            return refuse("too many marks");
        m->marks[m->n_marks++] = m->top;
        return 0;
    case 't':                               /* TUPLE */
        if (pop_mark(m, &d, &n) < 0)
            return -1;
        return push(m, K_TUPLE, d + 1);
    case 'a':                               /* APPEND */
        if (pop(m, &a) < 0)
            return -1;
        return fill(m, K_LIST, a.depth, "APPEND to something not a list");
    case 'e':                               /* APPENDS */
        if (pop_mark(m, &d, &n) < 0)
            return -1;
        return fill(m, K_LIST, d, "APPENDS to something not a list");
    case 's':                               /* SETITEM */
        if (pop(m, &b) < 0 || pop(m, &a) < 0)
            return -1;
        return fill(m, K_DICT, a.depth > b.depth ? a.depth : b.depth,
                    "SETITEM of something not a dict");
    case 'u':                               /* SETITEMS */
        if (pop_mark(m, &d, &n) < 0)
            return -1;
        if (n % 2)
            return refuse("SETITEMS of an odd number of items");
        return fill(m, K_DICT, d, "SETITEMS of something not a dict");

    /* calls */
    case 'R':                               /* REDUCE */
        if (pop(m, &b) < 0 || pop(m, &a) < 0)
            return -1;
        if (b.kind != K_TUPLE)
            return refuse("REDUCE arguments are not a tuple");
        if (a.kind == K_TUPLE || a.kind == K_LIST || a.kind == K_DICT
            || a.kind == K_STR || a.kind == K_NEW)
            return refuse("REDUCE of something not callable");
        if (a.kind == K_GLOBAL && (a.flags & PICKLE_REDUCE_NEW))
            return push_made(m, &a, "REDUCE");
        if (push(m, K_ATOM, 0) < 0)
            return -1;
        if (a.kind == K_GLOBAL) {
            /* remember what made it, to name it if it is BUILT */
            entry *e = &m->stack[m->top - 1];
            e->s = a.s;
            e->n = a.n;
            e->s2 = a.s2;
            e->n2 = a.n2;
        }
        return 0;
    case 0x81:                              /* NEWOBJ */
        if (pop(m, &b) < 0 || pop(m, &a) < 0)
            return -1;
        if (a.kind != K_GLOBAL)
            return refuse("NEWOBJ of something not a global class");
        if (!(a.flags & PICKLE_NEWOBJ)) {
            return refuse_named("NEWOBJ of", &a, "a class not in the allowlist of "
                                "NEWOBJ (dateutil's tzutc, tzoffset, tzlocal, and "
                                "2.x _ttinfo)");
        }
        if (b.kind != K_TUPLE)
            return refuse("NEWOBJ arguments are not a tuple");
        return push_made(m, &a, "NEWOBJ");
    case 'b': {                             /* BUILD */
        if (pop(m, &b) < 0)
            return -1;
        if (b.kind != K_DICT)
            return refuse("BUILD with a state that is not a dict");
        entry *t = peek(m);
        if (t != NULL && t->kind == K_ATOM && t->s2 != NULL)
            return refuse_named("BUILD of an object made by", t,
                                "only a fresh object of dateutil's tzlocal, "
                                "tzoffset, or 2.x tzfile and _ttinfo may be BUILT");
        if (t == NULL || t->kind != K_NEW)
            return refuse("BUILD of an object that NEWOBJ did not just make");
        m->built[t->obj] = 1;
        t->kind = K_ATOM;
        t->depth = 0;
        return 0;
    }

    /* memo */
    case 0x94:                              /* MEMOIZE */
        return memo_put(m, m->memo_len);
    case 'q':                               /* BINPUT */
        return take(m, 1, &arg) < 0 ? -1 : memo_put(m, arg[0]);
    case 'r':                               /* LONG_BINPUT */
        return take(m, 4, &arg) < 0 ? -1 : memo_put(m, le_read(arg, 4));
    case 'p':                               /* PUT */
        if (take_line(m, &arg, &n) < 0
            || parse_decimal(arg, n, m->memo_size, &idx) < 0)
            return -1;
        return memo_put(m, idx);
    case 'h':                               /* BINGET */
        return take(m, 1, &arg) < 0 ? -1 : memo_get(m, arg[0]);
    case 'j':                               /* LONG_BINGET */
        return take(m, 4, &arg) < 0 ? -1 : memo_get(m, le_read(arg, 4));
    case 'g':                               /* GET */
        if (take_line(m, &arg, &n) < 0
            || parse_decimal(arg, n, m->memo_size, &idx) < 0)
            return -1;
        return memo_get(m, idx);

    default:
        PyErr_Format(PyExc_ValueError,
                     "pseud: pickle opcode 0x%02x is not accepted", op);
        return -1;
    }
}

int
pickle_check(const unsigned char *data, size_t len,
             const pickle_class_name *classes, size_t n_classes)
{
    if (len > PICKLE_CHECK_MAX_LEN) {
        PyErr_Format(PyExc_ValueError,
                     "pseud: pickle of %zu bytes is too long for a datetime "
                     "object (at most %d)", len, PICKLE_CHECK_MAX_LEN);
        return -1;
    }
    model m;
    memset(&m, 0, sizeof m);
    m.start = m.p = data;
    m.end = data + len;
    m.memo_size = len + 1;
    m.classes = classes;
    m.n_classes = n_classes;
    /* most datetime pickles are under 200 bytes: no allocation for those */
    enum { INLINE = 256 };
    entry stack_buf[INLINE], memo_buf[INLINE];
    size_t marks_buf[INLINE];
    unsigned char built_buf[INLINE];
    int on_heap = len + 1 > INLINE;
    if (on_heap) {
        m.stack = PyMem_Calloc(len + 1, sizeof(entry));
        m.memo = PyMem_Calloc(len + 1, sizeof(entry));
        m.marks = PyMem_Calloc(len + 1, sizeof(size_t));
        m.built = PyMem_Calloc(len + 1, 1);
    }
    else {
        /* memo slots must start unset; stack entries, marks and built
         * flags are written before they are read */
        memset(memo_buf, 0, (len + 1) * sizeof(entry));
        m.stack = stack_buf;
        m.memo = memo_buf;
        m.marks = marks_buf;
        m.built = built_buf;
    }
    int rc = -1;
    if (m.stack == NULL || m.memo == NULL || m.marks == NULL || m.built == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int stopped = 0;
    while (!stopped) {
        if (m.p >= m.end) {
            refuse("truncated");
            goto done;
        }
        const unsigned char *op_at = m.p;
        if (m.frame_end == op_at)
            m.frame_end = NULL;
        if (step(&m, *m.p++, &stopped) < 0)
            goto done;
        /* _pickle reading from a file drops what is left of a frame when
         * an opcode runs past its end, and goes on from the next bytes:
         * it would run other opcodes than the ones checked here (found
         * by fuzz/fuzz_datetime.c: a LONG_BINPUT of index 2.4e9 hidden in
         * a BININT's argument) */
        if (m.frame_end != NULL && op_at < m.frame_end && m.p > m.frame_end) {
            refuse("an opcode runs past the end of its frame");
            goto done;
        }
    }
    rc = 0;
done:
    if (on_heap) {
        PyMem_Free(m.stack);
        PyMem_Free(m.memo);
        PyMem_Free(m.marks);
        PyMem_Free(m.built);
    }
    return rc;
}
