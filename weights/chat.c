/* Chat prompt formats (see chat.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

#define VICUNA_SYSTEM                                                                              \
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives " \
    "helpful, detailed, and polite answers to the user's questions."

struct buf {
    char *s;
    size_t n, cap;
    bool oom;
};

static void add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void adds(struct buf *b, const char *s)
{
    add(b, s, strlen(s));
}

enum chat_format chat_format_by_name(const char *name)
{
    if (!strcmp(name, "chatml"))
        return CHAT_CHATML;
    if (!strcmp(name, "vicuna"))
        return CHAT_VICUNA;
    return CHAT_NONE;
}

const char *chat_format_name(enum chat_format f)
{
    return f == CHAT_CHATML ? "chatml" : f == CHAT_VICUNA ? "vicuna" : "none";
}

enum chat_format chat_detect(const struct tokenizer *t)
{
    const char *tpl = tokenizer_chat_template(t);
    if (tpl && strstr(tpl, "<|im_start|>"))
        return CHAT_CHATML;
    if (tpl && strstr(tpl, "USER:") && strstr(tpl, "ASSISTANT:"))
        return CHAT_VICUNA;
    if (tpl)
        return CHAT_NONE; /* a template we do not know: do not guess */
    if (tokenizer_find(t, "<|im_start|>") >= 0)
        return CHAT_CHATML;
    if (tokenizer_kind(t) == TOKENIZER_SPM)
        return CHAT_VICUNA;
    return CHAT_NONE;
}

/* The text of the template's default system message ("'<|im_start|>system\n
 * ...<|im_end|>" as a literal in the Jinja source), or NULL. */
static const char *chatml_default_system(const struct tokenizer *t, size_t *len)
{
    static const char open[] = "'<|im_start|>system\n";
    const char *tpl = t ? tokenizer_chat_template(t) : NULL;
    const char *p = tpl ? strstr(tpl, open) : NULL;
    if (!p)
        return NULL;
    p += sizeof open - 1;
    const char *end = strstr(p, "<|im_end|>");
    if (!end || memchr(p, '\'', (size_t)(end - p)))
        return NULL;
    *len = (size_t)(end - p);
    return p;
}

static void chatml(struct buf *b, const struct tokenizer *t, const struct chat_msg *m, size_t n, bool add_assistant)
{
    size_t len;
    const char *sys = chatml_default_system(t, &len);
    if (sys && (n == 0 || strcmp(m[0].role, "system"))) {
        adds(b, "<|im_start|>system\n");
        add(b, sys, len);
        adds(b, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        adds(b, "<|im_start|>");
        adds(b, m[i].role);
        adds(b, "\n");
        adds(b, m[i].content);
        adds(b, "<|im_end|>\n");
    }
    if (add_assistant)
        adds(b, "<|im_start|>assistant\n");
}

/* FastChat's vicuna_v1.1: roles upper-cased, " " after a user turn, "</s>"
 * after an assistant turn. */
static void vicuna(struct buf *b, const struct chat_msg *m, size_t n, bool add_assistant)
{
    size_t i = 0;
    if (n && !strcmp(m[0].role, "system"))
        adds(b, m[i++].content);
    else
        adds(b, VICUNA_SYSTEM);
    adds(b, " ");
    for (; i < n; i++) {
        for (const char *r = m[i].role; *r; r++) {
            char c = (char)toupper((unsigned char)*r);
            add(b, &c, 1);
        }
        adds(b, ": ");
        adds(b, m[i].content);
        adds(b, strcmp(m[i].role, "assistant") ? " " : "</s>");
    }
    if (add_assistant)
        adds(b, "ASSISTANT:");
}

char *chat_apply(enum chat_format f, const struct tokenizer *t, const struct chat_msg *msgs, size_t n,
                 bool add_assistant)
{
    struct buf b = {0};
    adds(&b, "");
    if (f == CHAT_CHATML)
        chatml(&b, t, msgs, n, add_assistant);
    else if (f == CHAT_VICUNA)
        vicuna(&b, msgs, n, add_assistant);
    else
        b.oom = true;
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
