/* Log macros of the node agent. They compile away entirely unless AGENT_LOG_LEVEL is set
 * (0 none, 1 errors, 2 + info, 3 + debug), so the firmware pays nothing for them. When
 * enabled, the port supplies the sink agent_log_write(). Library code logs at most what it
 * also returns as an error; it never logs secrets or payloads. */
#ifndef FLEETGW_AGENT_LOG_H
#define FLEETGW_AGENT_LOG_H

#ifndef AGENT_LOG_LEVEL
#define AGENT_LOG_LEVEL 0
#endif

#if AGENT_LOG_LEVEL > 0
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void agent_log_write(int level, const char *fmt, ...);
#endif

#if AGENT_LOG_LEVEL >= 1
#define AGENT_LOGE(...) agent_log_write(1, __VA_ARGS__)
#else
#define AGENT_LOGE(...) ((void)0)
#endif
#if AGENT_LOG_LEVEL >= 2
#define AGENT_LOGI(...) agent_log_write(2, __VA_ARGS__)
#else
#define AGENT_LOGI(...) ((void)0)
#endif
#if AGENT_LOG_LEVEL >= 3
#define AGENT_LOGD(...) agent_log_write(3, __VA_ARGS__)
#else
#define AGENT_LOGD(...) ((void)0)
#endif

#endif
