from django.urls import path

from . import views

app_name = "search"
urlpatterns = [
    path("", views.search_page, name="page"),
    path("image/<int:image_id>", views.image_detail, name="image"),
    path("judge", views.judge, name="judge"),
    path("favicon.ico", views.favicon),
]
