//! Every route is registered through [`RouteList`], which also writes down its pattern and
//! methods: the tests hold a stalled body against each listed route, so a route added later
//! cannot escape the body deadline unnoticed (see `routes::body`).

use actix_web::dev::Handler;
use actix_web::http::Method;
use actix_web::{web, FromRequest, Resource, Responder};

/// One registered route: its pattern (with actix's `{name}` and `{name:regex}` segments) and
/// its method, `None` for a route that takes every method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRoute {
    pub pattern: String,
    pub method: Option<Method>,
}

/// Registers resources on an actix `ServiceConfig` and lists them.
pub struct RouteList<'a> {
    config: &'a mut web::ServiceConfig,
    listed: &'a mut Vec<ListedRoute>,
}

impl<'a> RouteList<'a> {
    pub fn new(config: &'a mut web::ServiceConfig, listed: &'a mut Vec<ListedRoute>) -> Self {
        RouteList { config, listed }
    }

    /// A resource at `pattern`; register it with [`ResourceBuilder::done`].
    pub fn resource(&mut self, pattern: impl Into<String>) -> ResourceBuilder<'_, 'a> {
        let pattern = pattern.into();
        ResourceBuilder {
            resource: web::resource(pattern.clone()),
            pattern,
            methods: Vec::new(),
            list: self,
        }
    }

    /// Anything else actix registers that is not a route of its own (a scope's default).
    pub fn config(&mut self) -> &mut web::ServiceConfig {
        self.config
    }
}

/// One resource being built: its data and its routes, one per method.
pub struct ResourceBuilder<'l, 'a> {
    list: &'l mut RouteList<'a>,
    pattern: String,
    resource: Resource,
    methods: Vec<Option<Method>>,
}

impl ResourceBuilder<'_, '_> {
    pub fn data<T: 'static>(mut self, data: T) -> Self {
        self.resource = self.resource.app_data(web::Data::new(data));
        self
    }

    pub fn to<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(Some(method));
        self
    }

    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.to(Method::GET, handler)
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.to(Method::POST, handler)
    }

    /// Every method (forward-auth: the proxy's sub-request may carry any).
    pub fn any<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::route().to(handler));
        self.methods.push(None);
        self
    }

    pub fn done(self) {
        let ResourceBuilder {
            list,
            pattern,
            resource,
            methods,
        } = self;
        list.listed
            .extend(methods.into_iter().map(|method| ListedRoute {
                pattern: pattern.clone(),
                method,
            }));
        list.config.service(resource);
    }
}
