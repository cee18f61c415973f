/* The wire codec: one Envelope (proto/tandem.proto) per ZeroMQ frame.
 *
 * proto_decode is the only way bytes from the network become a message: it
 * unpacks with protobuf-c and then checks every field against the limits of
 * the receiving side (version, which message, counts, token ids within the
 * vocabulary, probabilities), so the edge and the cloud only ever see
 * well-formed messages. Anything wrong gives NULL and one line in err that
 * names the message and the field (docs/protocol.md lists the rules). */
#ifndef TANDEM_PROTO_CODEC_H
#define TANDEM_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/tandem.pb-c.h"

#define TANDEM_PROTO_VERSION 1
/* No frame may be larger (a DRAFT of 64 tokens, each with a full 256K-entry
 * distribution, fits). */
#define PROTO_MAX_BYTES (160u << 20)

typedef Tandem__Envelope proto_msg;

/* What the receiver accepts; 0 in a field means "no limit beyond the
 * protocol's own". */
struct proto_limits {
    int32_t vocab;      /* token ids must be in [0, vocab) */
    uint32_t max_prompt; /* OPEN prompt ids */
    uint32_t max_gamma; /* DRAFT tokens */
};

/* Bytes -> a validated message (free with proto_free), or NULL and err. */
proto_msg *proto_decode(const void *buf, size_t len, const struct proto_limits *lim, char *err,
                        size_t errlen);
void proto_free(proto_msg *m);

/* Checks a message the way proto_decode does (used on decode, and by
 * senders in debug paths and tests). */
bool proto_validate(const proto_msg *m, const struct proto_limits *lim, char *err, size_t errlen);

/* A message -> malloc'd bytes (*len set); NULL on out of memory. Sets the
 * envelope's version to TANDEM_PROTO_VERSION. */
uint8_t *proto_encode(proto_msg *m, size_t *len);

/* "HELLO", "DRAFT", ... for logs and errors; "NONE" when no message is set. */
const char *proto_kind_name(Tandem__Envelope__MsgCase c);

#endif
