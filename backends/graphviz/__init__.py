"""Graphviz backend: the inferred graph drawn as a diagram (`irc plot`).

plot.py turns a Graph into DOT text, with the `graphviz` Python package,
and renders it to SVG or PNG through Graphviz's `dot` program; gallery.py
keeps docs/architecture/ (every spec's diagrams) current.
"""
