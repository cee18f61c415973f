/* The subcommands of the `tandem` binary. Each takes the arguments after its
 * name (argv[0] is the subcommand name) and returns the process exit code. */
#ifndef TANDEM_TOOLS_COMMANDS_H
#define TANDEM_TOOLS_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_train_exits(int argc, char **argv);
int cmd_cloud(int argc, char **argv);
int cmd_edge(int argc, char **argv);
int cmd_link(int argc, char **argv);
int cmd_prof(int argc, char **argv);
int cmd_sim(int argc, char **argv);

#endif
