"""The built-in data generator (``safelens data build``).

One file per concern: ``templates.py`` (domains and prompt templates), ``harmful.py`` (harm
categories, acts, refusal and compliance material), ``benign.py`` (everyday and look-alike acts
with helpful answers), ``independent.py`` (the hand-written prompt list), ``render.py`` (template
language, inflection, surface noise), ``responses.py`` (response composers), ``layout.py``
(the files and their sizes per kind), ``build.py`` (sampling, splits, writing) and ``card.py``
(the data card).
"""

from safelens.data.generator.build import build, generate
from safelens.data.generator.layout import FILES

__all__ = ["FILES", "build", "generate"]
