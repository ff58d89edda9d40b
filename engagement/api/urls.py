from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("customers", views.CustomerViewSet, basename="customer")

urlpatterns = [
    path("messages/", views.MessageCreate.as_view(), name="message-create"),
    path("interactions/<int:pk>/", views.InteractionDetail.as_view(), name="interaction-detail"),
    *router.urls,
]
