/* methods.h — the method names of rpc.proto and worker.proto as they
 * appear in Envelope.method ("<package>.<Service>/<Method>"). */
#ifndef LOOM_PROTOCOL_METHODS_H
#define LOOM_PROTOCOL_METHODS_H

/* Method names, e.g. LOOM_METHOD_SUBMIT = "loom.v1.Loom/Submit". */
#define LOOM_METHOD_SUBMIT "loom.v1.Loom/Submit"
#define LOOM_METHOD_PLAN "loom.v1.Loom/Plan"
#define LOOM_METHOD_WATCH "loom.v1.Loom/Watch"
#define LOOM_METHOD_GET "loom.v1.Loom/Get"
#define LOOM_METHOD_LIST "loom.v1.Loom/List"
#define LOOM_METHOD_CANCEL "loom.v1.Loom/Cancel"
#define LOOM_METHOD_RETRY "loom.v1.Loom/Retry"
#define LOOM_METHOD_LIST_WORKERS "loom.v1.Loom/ListWorkers"
#define LOOM_METHOD_HEALTH "loom.v1.Loom/Health"
#define LOOM_METHOD_REGISTER "loom.v1.WorkerHub/Register"
#define LOOM_METHOD_HEARTBEAT "loom.v1.WorkerHub/Heartbeat"
#define LOOM_METHOD_RESULT "loom.v1.WorkerHub/Result"
#define LOOM_METHOD_PROGRESS "loom.v1.WorkerHub/Progress"
#define LOOM_METHOD_ASSIGN "loom.v1.Worker/Assign"
#define LOOM_METHOD_DRAIN "loom.v1.Worker/Drain"
#define LOOM_METHOD_CANCEL_TASK "loom.v1.Worker/CancelTask"
#define LOOM_METHOD_ASSIGN_BATCH "loom.v1.Worker/AssignBatch"
#define LOOM_METHOD_RESULT_BATCH "loom.v1.WorkerHub/ResultBatch"
#define LOOM_METHOD_STARTED "loom.v1.WorkerHub/Started"


#endif
