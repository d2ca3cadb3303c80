"""Runs a BPMN process with SpiffWorkflow, the Python engine tongban's engine is compared with.

Usage: spiff_bench.py FILE PROCESS_ID COUNT
Starts COUNT instances one after another and drives each to completion: every ready user task is
completed (the decision task sets approved = True), exactly as tongban-bench does in Rust.
Prints one JSON object.
"""
import json
import sys
import time

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.util.task import TaskState
import SpiffWorkflow


def run_one(spec):
    wf = BpmnWorkflow(spec)
    wf.do_engine_steps()
    user_tasks = 0
    while not wf.is_completed():
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            raise RuntimeError("stuck: no ready user task")
        for t in ready:
            t.data["approved"] = True
            t.run()
            user_tasks += 1
        wf.do_engine_steps()
    return user_tasks


def main():
    path, process, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    parser = BpmnParser()
    parser.add_bpmn_file(path)
    spec = parser.get_spec(process)
    tasks = run_one(spec)
    start = time.perf_counter()
    for _ in range(count):
        run_one(spec)
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "engine": "SpiffWorkflow",
        "version": getattr(SpiffWorkflow, "__version__", "3.1.2"),
        "python": sys.version.split()[0],
        "instances": count,
        "user_tasks_per_instance": tasks,
        "seconds": round(elapsed, 4),
        "instances_per_second": round(count / elapsed, 1),
    }))


if __name__ == "__main__":
    main()
