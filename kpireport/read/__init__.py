""".xlsx → addressed cells → a validated :class:`~kpireport.core.model.Book` and its issues."""
