/* The harnesses' encoding of a multipart message in one fuzz input, shared
 * with fuzz/make_corpus.py: each frame is a length then its bytes; the
 * length is one byte below 0xff, or 0xff and two bytes little-endian. A
 * length past the end takes what is left. Each frame is copied into its
 * own allocation so that AddressSanitizer sees a read past any frame.
 * Include wire.h first for fuzz_frames_to_wire. */
#ifndef PSEUD_FUZZ_FRAMES_H
#define PSEUD_FUZZ_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_FRAMES 32

typedef struct {
    char *data[FUZZ_MAX_FRAMES];
    size_t len[FUZZ_MAX_FRAMES];
    size_t n;
} fuzz_frames;

static inline void
fuzz_frames_split(const uint8_t *in, size_t size, fuzz_frames *out)
{
    size_t pos = 0;
    out->n = 0;
    while (pos < size && out->n < FUZZ_MAX_FRAMES) {
        size_t len = in[pos++];
        if (len == 0xff) {
            len = pos + 2 <= size ? (size_t)in[pos] | (size_t)in[pos + 1] << 8 : 0;
            pos = pos + 2 <= size ? pos + 2 : size;
        }
        if (len > size - pos)
            len = size - pos;
        /* malloc(0) may return NULL: one byte more, never read */
        char *copy = malloc(len ? len : 1);
        if (copy == NULL)
            abort();
        memcpy(copy, in + pos, len);
        out->data[out->n] = copy;
        out->len[out->n] = len;
        out->n++;
        pos += len;
    }
}

static inline void
fuzz_frames_free(fuzz_frames *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->data[i]);
    f->n = 0;
}

#ifdef PSEUD_WIRE_H
/* The first frames as the reader holds them after wire_recv (max_frames
 * WIRE_FRAMES) or wire_recv_worker (WIRE_FRAMES_MAX), each a libzmq
 * message; returns the frame count wire_parse takes: frames past
 * WIRE_FRAMES_MAX + 1 count as that many. Release with wire_release. */
static inline int
fuzz_frames_to_wire(const fuzz_frames *in, wire_message *m, int max_frames)
{
    m->nframes = 0;
    for (size_t i = 0; i < in->n && i < (size_t)max_frames; i++) {
        if (zmq_msg_init_size(&m->frames[i], in->len[i]) != 0)
            abort();
        memcpy(zmq_msg_data(&m->frames[i]), in->data[i], in->len[i]);
        m->nframes++;
    }
    return in->n > WIRE_FRAMES_MAX + 1 ? WIRE_FRAMES_MAX + 1 : (int)in->n;
}
#endif

#endif
