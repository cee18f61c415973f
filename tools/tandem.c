/* tandem: one binary, git-style subcommands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"run", cmd_run, "generate text with a model"},
    {"convert", cmd_convert, "turn a Hugging Face, llama2.c or GGUF model into GGUF"},
    {"synth", cmd_synth, "write a random-weight model at any Llama shape"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"detokenize", cmd_detokenize, "print the text of token ids"},
    {"train-exits", cmd_train_exits, "fit early-exit heads and store them in the model"},
    {"cloud", cmd_cloud, "serve a target model to edges (verification, early exits)"},
    {"edge", cmd_edge, "generate with a draft model and a cloud (speculative decoding)"},
    {"link", cmd_link, "relay edge-cloud traffic with a WAN's delay, jitter and rate"},
    {"prof", cmd_prof, "per-round latency breakdown, Chrome trace and Gantt chart from traces"},
    {"sim", cmd_sim, "predict each mode's latency on other hardware from recorded rounds"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: tandem <command> [options]   (tandem <command> --help for details)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tandem: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
