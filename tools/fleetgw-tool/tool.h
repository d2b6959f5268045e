/* fleetgw-tool: the offline toolbox. Each command group lives in its own tool_<group>.c and
 * is listed in main.c. Exit codes everywhere: 0 valid/ok, 1 invalid (reason printed),
 * 2 usage or I/O error. */
#ifndef FLEETGW_TOOL_H
#define FLEETGW_TOOL_H

enum { TOOL_OK = 0, TOOL_INVALID = 1, TOOL_USAGE = 2 };

struct tool_group {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the group name */
};

int tool_key(int argc, char **argv);
int tool_image(int argc, char **argv);
int tool_token(int argc, char **argv);
int tool_quote(int argc, char **argv);

#endif
