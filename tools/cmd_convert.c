/* tandem convert: a Hugging Face folder, a llama2.c checkpoint or a GGUF file
 * into the GGUF the engine (and llama.cpp) runs. The input's kind comes from
 * what it is, not its name: a directory is a Hugging Face folder, a file that
 * starts with "GGUF" is a GGUF file, any other file a llama2.c checkpoint
 * (whose reader checks its header). The readers are in weights/convert*.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../weights/convert.h"
#include "commands.h"

static void convert_usage(FILE *out)
{
    fprintf(out,
            "usage: tandem convert INPUT -o OUT.gguf [options]\n\n"
            "Converts a model into a GGUF file (llama.cpp's conventions), tensor by tensor.\n"
            "INPUT is a Hugging Face model folder (config.json, *.safetensors, tokenizer),\n"
            "a llama2.c checkpoint (legacy or version 1) or a GGUF file.\n\n"
            "  -o, --output FILE    where to write (written to FILE.tmp, then renamed)\n"
            "      --type T         f32 | f16 | bf16 | q8_0 | q4_0 | q4_1: the type of 2-D\n"
            "                       weights (1-D tensors stay f32; rows not a multiple of 32\n"
            "                       fall back to f16). Default: f16, or for a GGUF input\n"
            "                       each tensor's own type\n"
            "      --tokenizer F    llama2.c: its tokenizer.bin; Hugging Face: a\n"
            "                       tokenizer.json or tokenizer.model to use instead of the\n"
            "                       folder's\n"
            "      --quiet          no progress bar (it is shown only on a terminal)\n"
            "  -h, --help           this text\n");
}

enum input_kind { INPUT_HF, INPUT_GGUF, INPUT_LLAMA2C };

/* What INPUT is, or false with a message when it cannot be read. */
static bool detect_input(const char *path, enum input_kind *kind)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "tandem convert: %s: %s\n", path, strerror(errno));
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        *kind = INPUT_HF;
        return true;
    }
    FILE *fp = fopen(path, "rb");
    char magic[4] = {0};
    if (!fp) {
        fprintf(stderr, "tandem convert: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t n = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    *kind = n == sizeof magic && !memcmp(magic, "GGUF", 4) ? INPUT_GGUF : INPUT_LLAMA2C;
    return true;
}

int cmd_convert(int argc, char **argv)
{
    enum { O_TYPE = 256, O_TOK, O_QUIET };
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"type", required_argument, 0, O_TYPE},
        {"tokenizer", required_argument, 0, O_TOK}, {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    struct convert_options co = {.type = DTYPE_F16, .progress = true};
    const char *out = NULL;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_TYPE:
            if (!dtype_from_name(optarg, &co.type)) {
                fprintf(stderr, "tandem convert: --type: '%s' is not one of f32 f16 bf16 q8_0 "
                                "q4_0 q4_1\n", optarg);
                return 2;
            }
            co.type_given = true;
            break;
        case O_TOK: co.tokenizer = optarg; break;
        case O_QUIET: co.progress = false; break;
        case 'h': convert_usage(stdout); return 0;
        default: convert_usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc || !out) {
        fprintf(stderr, "tandem convert: need one INPUT and -o OUT.gguf%s (see --help)\n",
                optind + 1 < argc ? ", more than one input given" : "");
        return 2;
    }
    const char *in = argv[optind];
    enum input_kind kind;
    if (!detect_input(in, &kind))
        return 1;
    if (kind == INPUT_GGUF && co.tokenizer) {
        fprintf(stderr, "tandem convert: --tokenizer is for llama2.c checkpoints and Hugging "
                        "Face folders; %s is a GGUF file and keeps its tokenizer\n", in);
        return 2;
    }
    char err[1024];
    bool ok = kind == INPUT_HF     ? convert_from_hf(in, out, &co, err, sizeof err)
            : kind == INPUT_GGUF   ? convert_from_gguf(in, out, &co, err, sizeof err)
                                   : convert_from_llama2c(in, out, &co, err, sizeof err);
    if (!ok) {
        fprintf(stderr, "tandem convert: %s\n", err);
        return 1;
    }
    return 0;
}
