"""Streamlit glue shared by the app's pages: session state, cached resources, the sidebar and plotly charts.

Pages render and call `mnist_core`; nothing here trains or does tensor math. `mnist_core` never imports this package
(it must work without Streamlit).
"""
