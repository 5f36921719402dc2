"""The pipeline's code: settings, graph, local runner and Azure ML submission."""
