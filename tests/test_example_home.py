"""The example's home page links to every other endpoint of the example."""

from __future__ import annotations

import re

from django.urls import URLPattern

from tests.servers import ROOT

SAMPLES = {"int": "1"}


def test_the_home_page_links_to_every_other_endpoint() -> None:
    from example_project.urls import urlpatterns

    template = (ROOT / "example/example_project/templates/home.html").read_text()
    links = set(re.findall(r'<a href="([^"]+)"', template))
    wanted = set()
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        if route == "":
            continue
        wanted.add("/" + re.sub(r"<(\w+):\w+>", lambda m: SAMPLES[m.group(1)], route))
    assert wanted and wanted <= links, wanted - links
