/*
 * worker.h — the worker process: owns the Lua state (sandbox, playbook
 * loader, step execution, the ctx API) and speaks the protocol of proto.h on
 * fd IRP_WORKER_FD. It never touches the journal, the terminal, the network
 * or child processes itself: every side effect is a "call" to the supervisor.
 * Depends on: Lua 5.4, jansson, proto.h.
 */
#ifndef IRP_WORKER_H
#define IRP_WORKER_H

/* Serves requests until the supervisor closes the pipe; returns the exit
 * status (0 on a clean EOF). */
int wk_main(void);

#endif
