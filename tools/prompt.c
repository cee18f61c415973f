#include "prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../weights/chat.h"

int prompt_parse_ids(const char *cmd, const char *s, int32_t **out)
{
    int n = 0, cap = 16;
    int32_t *ids = malloc(sizeof *ids * cap);
    while (ids && *s) {
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "%s: --ids: '%.20s' is not a token id\n", cmd, s);
            free(ids);
            return -1;
        }
        if (n == cap) {
            int32_t *grown = realloc(ids, sizeof *ids * (cap *= 2));
            if (!grown)
                break;
            ids = grown;
        }
        ids[n++] = (int32_t)v;
        s = end;
    }
    if (!ids || n == 0) {
        fprintf(stderr, "%s: --ids: no token ids given\n", cmd);
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

/* With chat, the markers of the format are special tokens. */
int prompt_encode(const char *cmd, const struct tokenizer *tok, const char *prompt, bool chat,
                  const char *chat_name, bool no_bos, int32_t **out)
{
    const char *text = prompt;
    char *wrapped = NULL;
    if (chat) {
        enum chat_format f = chat_name ? chat_format_by_name(chat_name) : chat_detect(tok);
        if (f == CHAT_NONE) {
            fprintf(stderr, chat_name ? "%s: --chat: unknown format '%s' (chatml, vicuna)\n"
                                      : "%s: --chat: no chat format known for this model%s; "
                                        "name one: --chat=chatml or --chat=vicuna\n",
                    cmd, chat_name ? chat_name : "");
            return -1;
        }
        struct chat_msg msg = {"user", prompt};
        text = wrapped = chat_apply(f, tok, &msg, 1, true);
        if (!wrapped)
            return -1;
    }
    size_t len = strlen(text);
    bool bos = !no_bos && tokenizer_add_bos_default(tok);
    int cap = (int)len + 2;
    int32_t *ids = malloc(sizeof *ids * cap);
    int n = ids ? tokenizer_encode(tok, text, len, bos, chat, ids, cap) : -1;
    free(wrapped);
    if (n < 0 || n > cap || (n == 0)) {
        fprintf(stderr, "%s: the prompt could not be tokenized%s\n", cmd,
                n == 0 ? " (empty)" : "");
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}
