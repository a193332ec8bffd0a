"""One Logger and Metrics for every function (service name from POWERTOOLS_SERVICE_NAME).

Tracing is the function's own (template.yaml's `TracingMode`, Active by default): Lambda
records each sampled invocation's segment (initialisation, invocation, overhead) with no SDK in
the process, and the Logger puts the trace id (`xray_trace_id`) on every log line. Powertools'
Tracer is left out on purpose: it imports the X-Ray SDK (and patches botocore), the largest
single part of a cold start (docs/decisions.md, "Tracing without the X-Ray SDK").
"""

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

logger = Logger()
metrics = Metrics(namespace="OptOutBridge")
