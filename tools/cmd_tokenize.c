/* tandem tokenize / tandem detokenize: a model's tokenizer on the command
 * line. Only the GGUF metadata is read (the file is mapped, tensors are never
 * touched), so this is quick even for a large model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../weights/chat.h"
#include "../weights/gguf.h"
#include "../weights/tokenizer.h"
#include "args.h"
#include "commands.h"

static void tokenize_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem tokenize -m MODEL.gguf [options] \"TEXT\"\n"
            "       tandem tokenize -m MODEL.gguf [options] -f FILE\n\n"
            "Prints the token ids of TEXT, space-separated, on one line.\n\n"
            "  -m, --model FILE   GGUF file whose tokenizer to use (required)\n"
            "  -f, --file FILE    tokenize the contents of FILE (- for standard input)\n"
            "      --no-bos       do not prepend BOS (default: as the model's metadata says)\n"
            "      --bos          prepend BOS even where the model does not\n"
            "      --special      recognise special tokens (<s>, <|im_start|> ...) in the text\n"
            "      --pieces       one token per line: id, tab, the token's text\n"
            "      --count        print only the number of tokens\n"
            "      --time         report bytes, tokens and encode time on stderr\n"
            "      --info         describe the tokenizer (kind, size, BOS/EOS, hash, chat format)\n"
            "  -h, --help         this text\n");
}

static void detokenize_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem detokenize -m MODEL.gguf [options] ID...\n\n"
            "Prints the text of the token ids (read from standard input when none are given).\n\n"
            "  -m, --model FILE   GGUF file whose tokenizer to use (required)\n"
            "      --special      print control tokens (<s>, </s>, <|im_end|> ...) too\n"
            "  -n, --no-newline   do not end the output with a newline\n"
            "  -h, --help         this text\n");
}

static struct tokenizer *open_tokenizer(const char *cmd, const char *path)
{
    char err[512];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    if (!f) {
        fprintf(stderr, "tandem %s: %s\n", cmd, err);
        return NULL;
    }
    struct tokenizer *t = tokenizer_load(f, err, sizeof err);
    if (!t)
        fprintf(stderr, "tandem %s: %s: %s\n", cmd, path, err);
    gguf_close(f);
    return t;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) {
        perror(path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    bool bad = ferror(fp);
    if (fp != stdin)
        fclose(fp);
    if (!buf || bad) {
        fprintf(stderr, "tandem tokenize: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* A token's stored text with bytes below 0x20, DEL and backslash escaped,
 * so each prints on one line. */
static void print_piece(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_info(const struct tokenizer *t)
{
    int32_t bos = tokenizer_bos(t), eos = tokenizer_eos(t);
    enum chat_format fmt = chat_detect(t);
    printf("model:      %s\n", tokenizer_kind(t) == TOKENIZER_SPM ? "llama (SentencePiece-style BPE)"
                                                                 : "gpt2 (byte-level BPE)");
    printf("vocabulary: %d tokens\n", tokenizer_vocab(t));
    printf("bos:        %d %s\n", bos, bos >= 0 ? tokenizer_piece(t, bos) : "(none)");
    printf("eos:        %d %s\n", eos, eos >= 0 ? tokenizer_piece(t, eos) : "(none)");
    printf("add bos:    %s\n", tokenizer_add_bos_default(t) ? "yes" : "no");
    printf("hash:       %016llx\n", (unsigned long long)tokenizer_hash(t));
    printf("chat:       %s\n", fmt == CHAT_NONE ? "(none)" : chat_format_name(fmt));
}

int cmd_tokenize(int argc, char **argv)
{
    enum { O_NO_BOS = 256, O_BOS, O_SPECIAL, O_PIECES, O_COUNT, O_TIME, O_INFO };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
        {"no-bos", no_argument, 0, O_NO_BOS}, {"bos", no_argument, 0, O_BOS},
        {"special", no_argument, 0, O_SPECIAL}, {"pieces", no_argument, 0, O_PIECES},
        {"count", no_argument, 0, O_COUNT},   {"time", no_argument, 0, O_TIME},
        {"info", no_argument, 0, O_INFO},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *file = NULL;
    int bos = -1; /* -1: the model's default */
    bool special = false, pieces = false, count = false, timing = false, info = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case O_NO_BOS: bos = 0; break;
        case O_BOS: bos = 1; break;
        case O_SPECIAL: special = true; break;
        case O_PIECES: pieces = true; break;
        case O_COUNT: count = true; break;
        case O_TIME: timing = true; break;
        case O_INFO: info = true; break;
        case 'h': tokenize_usage(stdout); return 0;
        default: tokenize_usage(stderr); return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "tandem tokenize: -m MODEL.gguf is required\n");
        return 2;
    }
    int n_text = argc - optind;
    if (!info && (n_text + (file != NULL) != 1)) {
        fprintf(stderr, "tandem tokenize: %s\n",
                n_text > 1 ? "give the text as one argument (quote it)"
                : n_text   ? "give TEXT or -f FILE, not both"
                           : "no text: give TEXT or -f FILE");
        return 2;
    }
    double t0 = now();
    struct tokenizer *t = open_tokenizer("tokenize", model);
    if (!t)
        return 1;
    double t_load = now() - t0;
    if (info) {
        print_info(t);
        tokenizer_free(t);
        return 0;
    }
    size_t len;
    char *text = file ? read_all(file, &len) : strdup(argv[optind]);
    if (!text) {
        tokenizer_free(t);
        return 1;
    }
    if (!file)
        len = strlen(text);
    bool add_bos = bos < 0 ? tokenizer_add_bos_default(t) : bos;
    t0 = now();
    /* room for a token per byte is nearly always enough: one pass */
    int cap = len < 0x7fffffff / 8 ? (int)len + 16 : 0, n = -1;
    int32_t *ids = malloc(((size_t)cap + 1) * sizeof *ids);
    if (ids && (n = tokenizer_encode(t, text, len, add_bos, special, ids, cap)) > cap) {
        int32_t *more = realloc(ids, (size_t)n * sizeof *ids);
        ids = more ? more : ids;
        n = more ? tokenizer_encode(t, text, len, add_bos, special, ids, n) : -1;
    }
    double t_enc = now() - t0;
    int rc = 0;
    if (n < 0 || !ids) {
        fprintf(stderr, "tandem tokenize: encoding failed (out of memory, or text over %d bytes)\n",
                (int)(0x7fffffff / 4));
        rc = 1;
    } else if (count) {
        printf("%d\n", n);
    } else if (pieces) {
        for (int i = 0; i < n; i++) {
            printf("%d\t", ids[i]);
            print_piece(tokenizer_piece(t, ids[i]));
            putchar('\n');
        }
    } else {
        for (int i = 0; i < n; i++)
            printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    if (timing && rc == 0)
        fprintf(stderr, "tokenize: %zu bytes -> %d tokens in %.3f s (%.2f MB/s, %.0f tokens/s); load %.3f s\n",
                len, n, t_enc, (double)len / 1e6 / t_enc, n / t_enc, t_load);
    free(ids);
    free(text);
    tokenizer_free(t);
    return rc;
}

/* Ids from the arguments, or whitespace-separated from standard input. */
static bool next_id(int argc, char **argv, int *i, const struct tokenizer *t, int32_t *id, bool *done)
{
    char buf[64];
    const char *s;
    if (*i < argc) {
        s = argv[(*i)++];
    } else if (argc == optind && scanf("%63s", buf) == 1) {
        s = buf;
    } else {
        *done = true;
        return true;
    }
    int v;
    if (!arg_int("detokenize: id", s, 0, tokenizer_vocab(t) - 1, &v))
        return false;
    *id = v;
    return true;
}

int cmd_detokenize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"special", no_argument, 0, 'S'},
        {"no-newline", no_argument, 0, 'n'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL;
    bool special = false, newline = true;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'S': special = true; break;
        case 'n': newline = false; break;
        case 'h': detokenize_usage(stdout); return 0;
        default: detokenize_usage(stderr); return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "tandem detokenize: -m MODEL.gguf is required\n");
        return 2;
    }
    struct tokenizer *t = open_tokenizer("detokenize", model);
    if (!t)
        return 1;
    struct detok d;
    detok_init(&d, t);
    d.show_special = special;
    size_t cap = detok_max_out(t);
    char *out = malloc(cap);
    int rc = out ? 0 : 1;
    int i = optind;
    for (bool done = false; rc == 0;) {
        int32_t id;
        if (!next_id(argc, argv, &i, t, &id, &done)) {
            rc = 1;
            break;
        }
        size_t k = done ? detok_flush(&d, out, cap) : detok_push(&d, id, out, cap);
        fwrite(out, 1, k, stdout);
        if (done)
            break;
    }
    if (rc == 0 && newline)
        putchar('\n');
    free(out);
    tokenizer_free(t);
    return rc;
}
