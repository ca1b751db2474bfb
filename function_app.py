"""The autoprotect Function App: registers the blueprints and nothing else.

Keep this import light: the Python worker must index the app within its start-up budget, and a failed import
would make every function vanish. Heavy modules load on the first invocation (see shared/runtime.py).
"""

import azure.functions as func

from functions import events, jobs, poller, sweeper

app = func.FunctionApp()
app.register_functions(events.bp)
app.register_functions(jobs.bp)
app.register_functions(poller.bp)
app.register_functions(sweeper.bp)
