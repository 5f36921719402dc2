# Maintained by the template this project was rendered from: update with `cruft update`, don't edit here.
"""aml_pipeline_kit: the generic machinery behind the project's pipeline, the same in every project rendered
from the template: the local runner (plan, aml_graph, local_runner, step_host, tracking) and ``check``.

It holds no project names or choices; those live in the project's own package, which drives it. Its version
is the template's: ``__version__`` below, which ``cruft update`` moves on together with this package.
"""

__version__ = "0.13.0"
